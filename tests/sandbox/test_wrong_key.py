"""A wrong SSH key against a real server ends in one line naming the host and the SSH error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from codeb_infra.cli.errors import ExitStatus
from codeb_infra.sandbox import SandboxInfo

pytestmark = pytest.mark.sandbox
REPO = Path(__file__).resolve().parents[2]


def test_wrong_key_names_the_host_and_the_refusal(shared_sandbox: SandboxInfo, tmp_path: Path) -> None:
    key = tmp_path / "wrong_key"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    key.chmod(0o600)
    inventory = tmp_path / "inventory.py"
    inventory.write_text(shared_sandbox.inventory.read_text().replace(str(shared_sandbox.ssh_key), str(key)))
    result = subprocess.run(
        [sys.executable, "-m", "codeb_infra", "status", "shop", "-i", str(inventory)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == ExitStatus.FAILED, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot reach app: "), result.stderr
    assert "Authentication failed" in errors[0] or "authentication" in errors[0].lower(), errors[0]
