"""Every secret the system holds, looked for everywhere it must not be: the PowerDNS API key, the
PostgreSQL admin and Redis passwords, each project's database and Redis passwords (its master env
on the storage and app servers), and Centrifugo's keys. Searched in pyinfra's -vvv output of
bootstrap, provision, deploy and restore drill, in the output of `codeb backup now|verify`, and in
every sandbox server's journal (Caddy's included), /var/log and Caddy's data directory."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from codeb_infra.config.roles import CENTRIFUGO_SECRETS, POSTGRES_ADMIN_PASSWORD, REDIS_PASSWORD
from tests.sandbox.conftest import REPO, Bootstrapped, must
from tests.sandbox.test_e2e import codeb, ok
from tests.support.images import ensure_images
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

PROJECT = f"sec-{uuid.uuid4().hex[:6]}"
PDNS_KEY = "/etc/codeb/secrets/pdns-api.key"
PROJECT_ENVS = "/etc/codeb/secrets/projects"
SECRET_VARIABLES = ("POSTGRES_PASSWORD", "DATABASE_URL", "REDIS_URL")
ROLES = ("app", "storage", "streaming", "backup")


@dataclass
class Outputs:
    runs: dict[str, str]
    """What each flow printed, by a name for it."""


def verbose_pyinfra(bootstrapped: Bootstrapped, script: str, **data: str) -> str:
    args = [p for k, v in data.items() for p in ("--data", f"{k}={v}")]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyinfra",
            "-y",
            "-vvv",
            str(bootstrapped.info.inventory),
            f"deploys/{script}.py",
            *args,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


@pytest.fixture(scope="module")
def outputs(bootstrapped: Bootstrapped) -> Iterator[Outputs]:
    """Every flow that touches a secret, run once for a project of this run's own (its slots go
    afterwards; its database stays, as provisioned data does)."""
    info = bootstrapped.info
    runs = {"bootstrap (first)": bootstrapped.first.output, "bootstrap (second)": bootstrapped.second.output}
    runs["provision -vvv"] = verbose_pyinfra(bootstrapped, "provision", project=PROJECT)
    runs["deploy -vvv"] = verbose_pyinfra(
        bootstrapped, "deploy", project=PROJECT, image=ensure_images()["v1"], push="true"
    )
    runs["backup now"] = ok(codeb(info, "backup", "now"))
    runs["restore drill -vvv"] = verbose_pyinfra(bootstrapped, "restore_drill")
    runs["backup verify --json"] = ok(codeb(info, "backup", "verify", "--json"))
    runs["backup status"] = codeb(info, "backup", "status").stdout
    yield Outputs(runs)
    codeb(info, "remove", PROJECT, "--force")


def env_values(text: str, keys: tuple[str, ...] | None = None) -> list[str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if "=" in line]
    return [value for key, value in pairs if keys is None or key in keys]


def url_password(url: str) -> str:
    match = re.match(r"^[a-z]+://[^:/@]*:([^@]+)@", url)
    assert match, "a URL in a master env without a password"
    return match.group(1)


def all_secrets(bootstrapped: Bootstrapped) -> dict[str, str]:
    """name -> value of every secret on the servers, read from their root-only files."""
    info = bootstrapped.info
    found = {
        "PostgreSQL admin password": must(ssh(info, "storage", f"cat {POSTGRES_ADMIN_PASSWORD}")).strip(),
        "Redis admin password": must(ssh(info, "storage", f"cat {REDIS_PASSWORD}")).strip(),
        "PowerDNS API key": must(ssh(info, "app", f"cat {PDNS_KEY}")).strip(),
    }
    for key, value in zip(
        [line.split("=", 1)[0] for line in must(ssh(info, "streaming", f"cat {CENTRIFUGO_SECRETS}")).splitlines()],
        env_values(must(ssh(info, "streaming", f"cat {CENTRIFUGO_SECRETS}"))),
        strict=True,
    ):
        found[f"Centrifugo {key}"] = value
    projects = must(ssh(info, "storage", f"ls {PROJECT_ENVS}")).split()
    assert f"{PROJECT}.env" in projects
    for name in projects:
        text = must(ssh(info, "storage", f"cat {PROJECT_ENVS}/{shlex.quote(name)}"))
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        project = name.removesuffix(".env")
        found[f"{project} database password"] = values["POSTGRES_PASSWORD"]
        found[f"{project} Redis password"] = url_password(values["REDIS_URL"])
        assert url_password(values["DATABASE_URL"]) == values["POSTGRES_PASSWORD"]
        app_copy = ssh(info, "app", f"cat /opt/codeb/env/{shlex.quote(project)}/master.env").stdout
        assert not app_copy or app_copy == text, f"{project}'s master env differs between storage and app"
    for name, value in found.items():
        assert len(value) >= 20, f"{name} is too short to be a generated secret"
    return found


def test_every_secret_is_absent_from_every_flows_output(bootstrapped: Bootstrapped, outputs: Outputs) -> None:
    secrets = all_secrets(bootstrapped)
    assert len(set(secrets.values())) == len(secrets), "each secret is its own"
    assert {"PowerDNS API key", f"{PROJECT} database password", f"{PROJECT} Redis password"} <= set(secrets)
    assert PROJECT in outputs.runs["deploy -vvv"] and "master.env" in outputs.runs["deploy -vvv"], (
        "commands were captured"
    )
    leaks = [
        f"{name} in {run}" for run, text in outputs.runs.items() for name, value in secrets.items() if value in text
    ]
    assert leaks == []


def server_leaks(bootstrapped: Bootstrapped, role: str, values: list[str]) -> list[str]:
    """Files and journal lines on one server that hold any of ``values``. The patterns travel on
    stdin into a root-only file there, never on a command line."""
    info = bootstrapped.info
    patterns = f"/root/.codeb-test-patterns-{uuid.uuid4().hex[:8]}"
    must(ssh(info, role, f"umask 077; cat > {patterns}", stdin="\n".join(values) + "\n"))
    try:
        found = must(
            ssh(
                info,
                role,
                (
                    f"journalctl --no-pager -o cat | grep -cF -f {patterns} || true; "
                    f"grep -rlF -f {patterns} /var/log /var/lib/caddy 2>/dev/null; "
                    # containers' own logs (podman keeps their env in its root-only config: that is no log)
                    f"find /var/lib/containers/storage/overlay-containers -name ctr.log -exec grep -lF -f {patterns} {{}} + "
                    "2>/dev/null; true"
                ),
            )
        )
    finally:
        ssh(info, role, f"rm -f {patterns}")
    count, *files = found.split()
    return ([f"{role}: {count} journal lines"] if count != "0" else []) + [f"{role}: {path}" for path in files]


def test_every_secret_is_absent_from_every_servers_logs(bootstrapped: Bootstrapped, outputs: Outputs) -> None:
    values = list(all_secrets(bootstrapped).values())
    leaks = [leak for role in ROLES for leak in server_leaks(bootstrapped, role, values)]
    assert leaks == []


def test_the_log_search_finds_a_secret_that_was_logged(bootstrapped: Bootstrapped) -> None:
    """The search above can fail: a value this test logs on purpose (not a real secret) is found."""
    marker = uuid.uuid4().hex + uuid.uuid4().hex
    must(ssh(bootstrapped.info, "backup", "systemd-cat -t codeb-test-marker", stdin=marker + "\n"))
    deadline = time.monotonic() + 20
    while not server_leaks(bootstrapped, "backup", [marker]):
        assert time.monotonic() < deadline, "a logged marker was not found in the backup server's journal"
        time.sleep(1)
