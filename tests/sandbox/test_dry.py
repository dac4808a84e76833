"""`--dry` over SSH on the sandbox: each mutating command's plan leaves every server as it was
(registry and pointer files, containers, Caddy sites, DNS records and the files under /etc and
/opt, read with ssh, podman and pdnsutil, not with the facts under test), and names what the real
run then changes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from codeb_infra.sandbox import SandboxInfo
from tests.sandbox.conftest import Bootstrapped
from tests.support.images import ensure_images
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "drycheck"
ACTIVE = f"/etc/caddy/upstreams/{PROJECT}-production.active"
SITE = f"/etc/caddy/sites/{PROJECT}-production.caddy"
MARKER = "/run/codeb-dry-marker"

APP_STATE = " ; ".join(
    [
        "cat /opt/codeb/registry/ssot.json /opt/codeb/registry/slots.json 2>/dev/null | sha256sum",
        "ls -la --time-style=full-iso /etc/caddy/upstreams /etc/caddy/sites /opt/codeb/locks",
        "head -v -n1 /etc/caddy/upstreams/* 2>/dev/null",
        "sha256sum /etc/caddy/sites/* /etc/caddy/Caddyfile 2>/dev/null",
        "podman ps -aq | xargs -r podman inspect --format '{{.Name}} {{.Id}} {{.State.Status}} {{.State.StartedAt}}'",
        "pdnsutil list-zone codeb.test 2>/dev/null | sort",
    ]
)


def codeb(info: SandboxInfo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeb_infra.cli", *args, "-i", str(info.inventory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


class Servers:
    """Every server's state as read independently, and the files written since a marker."""

    def __init__(self, info: SandboxInfo) -> None:
        self.info = info

    def read(self) -> dict[str, str]:
        state = {"app": ok(ssh(self.info, "app", APP_STATE))}
        for role in ("streaming", "storage", "backup"):
            state[role] = ok(
                ssh(
                    self.info,
                    role,
                    "command -v podman >/dev/null && podman ps -aq | xargs -r podman inspect "
                    "--format '{{.Name}} {{.Id}} {{.State.StartedAt}}'; true",
                )
            )
        return state

    def mark(self) -> None:
        for role in self.info.servers:
            ok(ssh(self.info, role, f"touch {MARKER}"))

    def written_since_mark(self) -> dict[str, list[str]]:
        return {
            role: ok(ssh(self.info, role, f"find /etc /opt /usr/local -xdev -newer {MARKER} -type f")).split()
            for role in self.info.servers
        }


def dry(servers: Servers, *args: str) -> dict[str, Any]:
    """`codeb ARGS --dry --json`, checked to leave every server as it was."""
    before = servers.read()
    servers.mark()
    plan = json.loads(ok(codeb(servers.info, *args, "--dry", "--json")))
    assert servers.written_since_mark() == {role: [] for role in servers.info.servers}, f"--dry of {args} wrote files"
    assert servers.read() == before, f"--dry of {args} changed a server"
    return plan


def changes(plan: dict[str, Any], what: str) -> list[dict[str, Any]]:
    return [c for p in plan["plans"] for c in p["changes"] if c["what"] == what]


def app(info: SandboxInfo, command: str) -> str:
    return ssh(info, "app", command).stdout.strip()


def test_dry_changes_nothing_and_names_what_the_run_changes(bootstrapped: Bootstrapped) -> None:
    info, images = bootstrapped.info, ensure_images()
    servers = Servers(info)
    push = ("--image", images["v1"], "--push")

    plan = dry(servers, "deploy", PROJECT, *push)
    assert plan["changed"] and all(p["host"] == "app" for p in plan["plans"])
    assert [c["target"] for c in changes(plan, "container")] == [f"{PROJECT}-production-blue"]
    assert [c["target"] for c in changes(plan, "Caddy site")] == [SITE]
    assert changes(plan, "DNS records")[0]["new"].startswith(f"{PROJECT}.codeb.test")
    ok(codeb(info, "deploy", PROJECT, *push))
    assert app(info, f"podman inspect --format '{{{{.State.Status}}}}' {PROJECT}-production-blue") == "running"
    assert app(info, f"test -f {SITE} && echo yes") == "yes"
    assert f"{PROJECT}.codeb.test" in app(info, "pdnsutil list-zone codeb.test")

    pending = codeb(info, "promote", PROJECT, "--expect-no-changes")
    assert pending.returncode == 3, pending.stdout + pending.stderr
    plan = dry(servers, "promote", PROJECT)
    [move] = [c for c in changes(plan, "pointer") if c["target"] == ACTIVE]
    assert move["old"] is None and move["new"].startswith("127.0.0.1:")
    ok(codeb(info, "promote", PROJECT))
    assert app(info, f"cat {ACTIVE}") == move["new"], "the promote moved the pointer where the plan said"
    assert codeb(info, "promote", PROJECT, "--expect-no-changes").returncode == 0

    ok(codeb(info, "deploy", PROJECT, "--image", images["v2"], "--push"))
    ok(codeb(info, "promote", PROJECT))
    plan = dry(servers, "rollback", PROJECT)
    [back] = [c for c in changes(plan, "pointer") if c["target"] == ACTIVE]
    assert back["old"] == app(info, f"cat {ACTIVE}") and back["new"] == move["new"]
    assert not changes(plan, "container"), "a rollback touches no container"
    ok(codeb(info, "rollback", PROJECT))
    assert app(info, f"cat {ACTIVE}") == back["new"]
    # The promote's watch ends by itself once slots.json moved on, writing its record as it ends:
    # the rollback returns sooner than that, and the dry cleanup must not count that write.
    deadline = time.monotonic() + 60
    while app(info, f"systemctl is-active codeb-watch-{PROJECT}-production") == "active":
        assert time.monotonic() < deadline, "the promote's watch did not end after the rollback"
        time.sleep(0.5)

    plan = dry(servers, "cleanup", PROJECT, "--force")
    assert [c["target"] for c in changes(plan, "container")] == [f"{PROJECT}-production-green"]
    ok(codeb(info, "cleanup", PROJECT, "--force"))
    assert (
        app(info, f"podman ps -a --format '{{{{.Names}}}}' --filter label=codeb.project={PROJECT}")
        == f"{PROJECT}-production-blue"
    )

    plan = dry(servers, "remove", PROJECT, "--force")
    assert {c["what"] for c in plan["plans"][0]["changes"]} == {
        "container",
        "Caddy site",
        "pointer",
        "DNS records",
        "slot records",
        "registry entry",
    }
    ok(codeb(info, "remove", PROJECT, "--force"))
    assert app(info, f"ls {SITE} {ACTIVE} 2>/dev/null; podman ps -aq --filter label=codeb.project={PROJECT}") == ""
    assert f"{PROJECT}.codeb.test" not in app(info, "pdnsutil list-zone codeb.test")
    assert codeb(info, "remove", PROJECT, "--force", "--expect-no-changes").returncode == 0


def test_bootstrap_dry_shows_each_servers_drift(bootstrapped: Bootstrapped) -> None:
    info = bootstrapped.info
    servers = Servers(info)
    ok(ssh(info, "app", "echo '# edited by hand' >> /etc/caddy/Caddyfile"))
    try:
        plan = dry(servers, "bootstrap")
        drift = {p["host"]: [c["target"] for c in p["changes"]] for p in plan["plans"]}
        assert set(drift) == {"app", "streaming", "storage", "backup"}
        assert "Bootstrap app server | Main Caddyfile" in drift["app"], drift
        assert drift["streaming"] == drift["storage"] == drift["backup"] == [], drift
        assert "# edited by hand" in app(info, "cat /etc/caddy/Caddyfile"), "--dry left the drift alone"
        assert codeb(info, "bootstrap", "--expect-no-changes").returncode == 3
    finally:
        ok(codeb(info, "bootstrap"))
    assert "# edited by hand" not in app(info, "cat /etc/caddy/Caddyfile")
    assert codeb(info, "bootstrap", "--expect-no-changes").returncode == 0
