"""The whole flow over SSH on the four sandbox servers, as a user runs it: bootstrap, deploy with
an image copied from this machine, preview, promote under load over HTTPS, rollback, and a restart
of the app server that the active slot survives."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeb_infra.controller import probe
from codeb_infra.sandbox import SandboxInfo
from codeb_infra.sandbox.engine import connect
from tests.sandbox.conftest import Bootstrapped, must
from tests.support.images import ensure_images
from tests.support.load import Switch, summarize_switches
from tests.support.load_process import LoadProcess
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "shop"
DOMAIN, PREVIEW = f"{PROJECT}.codeb.test", f"{PROJECT}-preview.codeb.test"


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)


def pyinfra(info: SandboxInfo, script: str, **data: str) -> subprocess.CompletedProcess[str]:
    args = [p for k, v in data.items() for p in ("--data", f"{k}={v}")]
    return run(sys.executable, "-m", "pyinfra", "-y", str(info.inventory), f"deploys/{script}.py", *args)


def codeb(info: SandboxInfo, *args: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "codeb_infra.cli", *args, "-i", str(info.inventory))


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def changed_ops(output: str) -> list[str]:
    """pyinfra's per-host result lines of operations that changed something (`    [app]    Success`)."""
    return re.findall(r"^\s*\[[\w@.:-]+\]\s+Success.*$", output, re.MULTILINE)


class Web:
    """HTTPS to the app server's Caddy from this machine, verified against Caddy's own root."""

    def __init__(self, info: SandboxInfo, root_pem: str) -> None:
        self.port = info.servers["app"].https_port
        self.root_pem = root_pem

    def serves(self, domain: str) -> str:
        status, body = probe.get(domain, address="127.0.0.1", port=self.port, https=True, root_pem=self.root_pem)
        return body if status == 200 else f"HTTP {status}"


def test_bootstrap_with_the_codeb_cli_changes_nothing_after_pyinfra_did_it(bootstrapped: Bootstrapped) -> None:
    assert changed_ops(bootstrapped.second.output) == [], bootstrapped.second.output[-3000:]
    assert ok(codeb(bootstrapped.info, "bootstrap")).strip().endswith("no change")


def _no_delay_of_a_run(inventory: str) -> list[int]:
    import socket

    from pyinfra import host

    from codeb_infra.controller import runner

    def no_delay() -> int:
        return host.connector.client.get_transport().sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    return runner.read_facts(inventory, no_delay)


def test_a_runs_ssh_connection_sends_each_command_at_once(bootstrapped: Bootstrapped) -> None:
    """TCP_NODELAY on the controller's connection; without it each of a run's remote commands
    waits about 40 ms for the server's delayed ACK (bench/ssh_switch.py measures the difference)."""
    from tests.support import isolated

    assert isolated.call(_no_delay_of_a_run, str(bootstrapped.info.inventory)) == [1]


def test_blue_green_over_ssh(bootstrapped: Bootstrapped) -> None:
    info = bootstrapped.info
    images = ensure_images()
    codeb(info, "remove", PROJECT, "--force")  # what an earlier run on this sandbox left
    ok(pyinfra(info, "deploy", project=PROJECT, image=images["v1"], push="true"))
    ok(codeb(info, "promote", PROJECT))
    root = ssh(info, "app", f"cat {probe.CADDY_LOCAL_ROOT}").stdout
    assert "BEGIN CERTIFICATE" in root
    web = Web(info, root)
    assert web.serves(DOMAIN) == "v1"
    out = ok(codeb(info, "deploy", PROJECT, "--image", images["v2"], "--push"))
    assert f"preview: https://{PREVIEW} -> green" in out
    assert web.serves(PREVIEW) == "v2" and web.serves(DOMAIN) == "v1"
    assert ok(codeb(info, "deploy", PROJECT, "--image", images["v2"], "--push")).strip().endswith("no change")
    # the app server's PowerDNS answers the project's names with the app server's address
    app_address = info.servers["app"].address
    answers = ssh(info, "app", f"dig +short @{app_address} {DOMAIN} {PREVIEW}").stdout.split()
    assert answers == [app_address, app_address]
    # the slots run as systemd units through Quadlet
    units = ssh(
        info, "app", f"systemctl is-active {PROJECT}-production-blue.service {PROJECT}-production-green.service"
    ).stdout.split()
    assert units == ["active", "active"]

    identity = slot_identity(info)

    switches: list[Switch] = []
    with LoadProcess(
        f"https://127.0.0.1:{web.port}/", DOMAIN, clients=4, keepalive=False, max_seconds=300, root_pem=root
    ) as load:
        load.wait(1.0)
        for step, old, new in (
            ("promote", "v1", "v2"),
            ("rollback", "v2", "v1"),
            ("rollback", "v1", "v2"),
            ("rollback", "v2", "v1"),
        ):
            started = time.monotonic()
            ok(codeb(info, step, PROJECT))
            switches.append(Switch(started, time.monotonic(), old, new))
            load.wait(1.0)
    result = load.result()
    summary = summarize_switches(result.check_switches(switches))
    print(
        f"\nHTTPS through the app server's Caddy: {result.total} requests, {result.failed} failed "
        f"over {len(switches)} switches"
    )
    assert result.failed == 0, result.failures
    assert set(result.bodies) == {"v1", "v2"}
    assert summary.missing_new == 0 and summary.late_old == 0
    assert web.serves(DOMAIN) == "v1"
    assert slot_identity(info) == identity, "promote and rollback must not create, restart or re-run a slot"
    printed = ok(codeb(info, "status", PROJECT, "--json"))
    status = json.loads(printed[printed.index("{") :])
    assert status["active_slot"] == "blue" and status["slots"]["green"]["state"] == "grace"


def slot_identity(info: SandboxInfo) -> list[str]:
    """Container ID, start time and restart count of both slots, and their Quadlet units' invocation
    IDs (a restart of the unit changes it): read with podman and systemctl, not codeb's facts."""
    names = [f"{PROJECT}-production-{slot}" for slot in ("blue", "green")]
    containers = must(
        ssh(
            info,
            "app",
            "podman inspect --format '{{.Name}} {{.Id}} {{.State.StartedAt}} {{.RestartCount}}' " + " ".join(names),
        )
    ).splitlines()
    units = must(
        ssh(info, "app", "systemctl show -p InvocationID --value " + " ".join(f"{n}.service" for n in names))
    ).split()
    assert len(containers) == 2 and len(units) == 2 and all(units), (containers, units)
    return containers + units


def test_the_base_zone_names_the_four_servers(bootstrapped: Bootstrapped) -> None:
    info = bootstrapped.info
    app = info.servers["app"].address
    names = " ".join(f"{label}.codeb.test" for label in ("app", "ws", "db", "backup"))
    answers = ssh(info, "app", f"dig +short @{app} {names}").stdout.split()
    assert answers == [info.servers[role].address for role in ("app", "streaming", "storage", "backup")]


def test_removing_a_project_takes_its_slots_site_and_records(bootstrapped: Bootstrapped) -> None:
    info, images, project = bootstrapped.info, ensure_images(), "gone"
    app = info.servers["app"].address
    ok(codeb(info, "deploy", project, "--image", images["v1"], "--push"))
    ok(codeb(info, "promote", project))
    assert ssh(info, "app", f"dig +short @{app} gone.codeb.test").stdout.split() == [app]
    refused = codeb(info, "remove", project)
    assert refused.returncode == 2 and "pass force=true" in refused.stdout
    ok(codeb(info, "remove", project, "--force"))
    assert ssh(info, "app", f"dig +short @{app} gone.codeb.test gone-preview.codeb.test").stdout.split() == []
    leftovers = ssh(
        info,
        "app",
        "ls /etc/caddy/sites /etc/caddy/upstreams; podman ps -a --format '{{.Names}}'; "
        "cat /opt/codeb/registry/ssot.json /opt/codeb/registry/slots.json",
    ).stdout
    assert "gone" not in leftovers
    assert PROJECT in leftovers, "other projects stay"
    assert ok(codeb(info, "remove", project)).strip().endswith("no change")


@pytest.mark.restarts_servers
def test_active_slot_survives_a_restart_of_the_app_server(bootstrapped: Bootstrapped) -> None:
    root = ssh(bootstrapped.info, "app", f"cat {probe.CADDY_LOCAL_ROOT}").stdout
    web = Web(bootstrapped.info, root)
    before = web.serves(DOMAIN)
    assert before in ("v1", "v2")
    with connect(echo=lambda _: None) as engine:
        container = engine.client.containers.get(bootstrapped.info.servers["app"].container)
        container.stop(timeout=30)
        container.start()
    deadline = time.monotonic() + 180
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = web.serves(DOMAIN)
            if seen == before:
                break
        except OSError:
            pass
        time.sleep(1)
    assert seen == before, "after a restart the active slot must serve again without any deploy"
