"""One version on every server: bootstrap's /opt/codeb/version.json, and `codeb version --check`
seeing a server whose tool differs from this controller's until a bootstrap brings it in line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from codeb_infra import __version__
from tests.sandbox.conftest import REPO, Bootstrapped
from tests.sandbox.test_e2e import codeb
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox


def test_every_server_records_its_version_and_check_sees_a_changed_tool(bootstrapped: Bootstrapped) -> None:
    info = bootstrapped.info
    for role in ("app", "streaming", "storage", "backup"):
        recorded = json.loads(ssh(info, role, "cat /opt/codeb/version.json").stdout)
        assert recorded["version"] == __version__ and recorded["roles"] == [role]
    assert "/opt/codeb/bin/codeb-state" in json.loads(ssh(info, "app", "cat /opt/codeb/version.json").stdout)["tools"]
    assert "version.json" not in " ".join(
        line for line in bootstrapped.second.output.splitlines() if "Success" in line
    ), "a second bootstrap rewrote it"

    checked = codeb(info, "version", "--check")
    assert checked.returncode == 0, checked.stdout
    assert f"controller  {__version__}" in checked.stdout and checked.stdout.count(__version__) == 5

    assert ssh(info, "app", "echo '# edited by hand' >> /opt/codeb/bin/codeb-state").returncode == 0
    drifted = codeb(info, "version", "--check")
    assert drifted.returncode == 1 and "codeb-state differs" in drifted.stdout, drifted.stdout

    again = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", str(info.inventory), "deploys/bootstrap.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert again.returncode == 0, again.stdout[-3000:]
    assert codeb(info, "version", "--check").returncode == 0
