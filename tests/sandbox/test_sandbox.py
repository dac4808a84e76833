"""The sandbox for real: four containers running systemd and sshd, reached by SSH and pyinfra."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codeb_infra.sandbox import ROLES, SandboxInfo, down, status, up
from codeb_infra.sandbox.engine import connect
from codeb_infra.sandbox.image import ImageRecipe
from codeb_infra.sandbox.model import INSTANCE_VAR, instance
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox


def quiet(_: str) -> None:
    pass


@dataclass
class Sandbox:
    state_dir: Path
    info: SandboxInfo
    output: list[str]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox of its own, under an instance name no other sandbox uses (the demo's, the shared
    one and others may run beside it on the same engine)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(INSTANCE_VAR, f"{instance()[:20]}-t{os.getpid() % 10**6}")
        if status(echo=quiet) is not None:
            pytest.fail(f"A sandbox named {instance()} already runs on this engine; `codeb sandbox down` it first.")
        state_dir = tmp_path_factory.mktemp("sandbox-state")
        output: list[str] = []
        started = time.monotonic()
        info = up(state_dir, echo=output.append)
        print(f"\nup (from nothing): {time.monotonic() - started:.1f}s")
        try:
            yield Sandbox(state_dir, info, output)
        finally:
            down(state_dir, echo=quiet)


def test_up_reports_four_running_servers_and_how_to_use_them(sandbox: Sandbox) -> None:
    info = sandbox.info
    assert info.changed
    assert set(info.servers) == set(ROLES)
    assert all(server.state == "running" for server in info.servers.values())
    assert len({server.ssh_port for server in info.servers.values()}) == 4
    assert len({server.address for server in info.servers.values()}) == 4
    assert f"pyinfra {info.inventory} deploys/bootstrap.py" in info.usage
    assert info.usage in sandbox.output


def test_key_is_private_to_its_owner(sandbox: Sandbox) -> None:
    mode = stat.S_IMODE(sandbox.info.ssh_key.stat().st_mode)
    assert mode == 0o600
    assert sandbox.info.ssh_key.parent == sandbox.state_dir


def test_each_server_boots_and_answers_over_ssh_as_itself(sandbox: Sandbox) -> None:
    machine_ids = set()
    for role in ROLES:
        result = ssh(
            sandbox.info,
            role,
            "systemctl is-system-running --wait; hostname; cat /etc/machine-id; hostname -I",
        )
        assert result.returncode == 0, result.stderr
        state, hostname, machine_id, *addresses = result.stdout.split()
        assert (state, hostname) == ("running", role)
        assert sandbox.info.servers[role].address in addresses
        machine_ids.add(machine_id)
    assert len(machine_ids) == 4


def test_each_server_has_its_own_filesystem(sandbox: Sandbox) -> None:
    assert ssh(sandbox.info, "app", "echo app > /root/only-on-app").returncode == 0
    for role in ("streaming", "storage", "backup"):
        assert ssh(sandbox.info, role, "test ! -e /root/only-on-app").returncode == 0


def test_app_resolves_storage_by_its_network_alias(sandbox: Sandbox) -> None:
    result = ssh(sandbox.info, "app", "getent hosts storage")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == sandbox.info.servers["storage"].address


def test_inventory_drives_pyinfra_on_all_four(sandbox: Sandbox) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", str(sandbox.info.inventory), "exec", "hostname"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # pyinfra reports each host's output on stderr
        text=True,
        timeout=300,
        check=False,
        cwd=sandbox.state_dir,
    )
    assert result.returncode == 0, result.stdout
    for role in ROLES:
        assert re.search(rf"^\[{role}\]\s+{role}$", result.stdout, re.MULTILINE), result.stdout


def test_second_up_changes_nothing(sandbox: Sandbox) -> None:
    inventory_mtime = sandbox.info.inventory.stat().st_mtime_ns
    output: list[str] = []
    started = time.monotonic()
    again = up(sandbox.state_dir, echo=output.append)
    print(f"\nup (already up): {time.monotonic() - started:.1f}s")
    assert not again.changed
    assert "The sandbox is already up; nothing changed." in output
    assert again.servers == sandbox.info.servers
    assert sandbox.info.inventory.stat().st_mtime_ns == inventory_mtime


def test_status_lists_each_server(sandbox: Sandbox) -> None:
    info = status(echo=quiet)
    assert info is not None
    assert info.servers == sandbox.info.servers
    assert info.inventory == sandbox.info.inventory
    lines = info.describe().splitlines()[1:]
    for line, role in zip(lines, ROLES, strict=True):
        port, address = info.servers[role].ssh_port, info.servers[role].address
        assert line.split() == [role, "running", f"127.0.0.1:{port}", str(address)]


def test_podman_runs_containers_inside_the_app_server(sandbox: Sandbox) -> None:
    install = ssh(
        sandbox.info,
        "app",
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman busybox-static",
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    # No registry is reachable: import a one-binary busybox image made on the server itself.
    run = ssh(
        sandbox.info,
        "app",
        "set -e; export PODMAN_IGNORE_CGROUPSV1_WARNING=1;"
        " rm -rf /tmp/bb; mkdir -p /tmp/bb/bin; cp /bin/busybox /tmp/bb/bin/busybox;"
        " tar -C /tmp/bb -c . | podman import -q - localhost/busybox:sandbox;"
        " podman run --rm localhost/busybox:sandbox /bin/busybox echo hello-from-nested-podman",
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "hello-from-nested-podman"


def _orphan(container_id: str) -> None:
    """Kill a server's processes behind the engine's back, as the end of a machine's session does:
    the engine's record still says running, and nothing runs."""
    inspect = ["podman", "inspect", "-f", "{{.State.Pid}} {{.State.ConmonPid}}", container_id]
    pid, conmon = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.split()
    os.kill(int(conmon), signal.SIGSTOP)
    os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["rm", "-rf", f"/run/runc/{container_id}"], check=True)
    os.kill(int(conmon), signal.SIGKILL)


def test_up_revives_servers_that_are_listed_as_running_but_do_not_answer(sandbox: Sandbox) -> None:
    with connect(quiet) as engine:
        backup = engine.client.containers.get(sandbox.info.servers["backup"].container)
        backup.exec_run(["sh", "-c", "echo kept > /root/kept; systemctl stop ssh.service ssh.socket"])
    assert ssh(sandbox.info, "backup", "true", timeout=20).returncode != 0
    _orphan(sandbox.info.servers["storage"].container_id)

    output: list[str] = []
    info = up(sandbox.state_dir, echo=output.append)
    sandbox.info = info

    said = "\n".join(output)
    assert "codeb-" in said and "backup is listed as running but its SSH does not answer" in said
    assert "storage is listed as running but its SSH does not answer" in said
    assert info.changed
    assert ssh(info, "backup", "cat /root/kept").stdout.strip() == "kept"  # restarted, not made anew
    assert ssh(info, "storage", "systemctl is-system-running --wait").stdout.strip() == "running"
    assert not up(sandbox.state_dir, echo=quiet).changed


def test_down_removes_exactly_the_sandbox(sandbox: Sandbox) -> None:
    names = [server.container for server in sandbox.info.servers.values()]
    with connect(quiet) as engine:
        client = engine.client
        decoy_network = client.networks.create("codeb-sandbox-decoy", driver="bridge")
        decoy = client.containers.create(
            ImageRecipe().tag,
            name="codeb-sandbox-decoy",
            labels={"codeb.sandbox": "0"},
            network_mode="none",
        )
        try:
            started = time.monotonic()
            removed = down(sandbox.state_dir, echo=quiet)
            print(f"\ndown: {time.monotonic() - started:.1f}s")

            left = {c.name for c in client.containers.list(all=True)}
            networks = {n.name for n in client.networks.list()}
            assert not left & set(names)
            assert instance() not in networks
            assert "codeb-sandbox-decoy" in left
            assert "codeb-sandbox-decoy" in networks
            assert client.images.get(ImageRecipe().tag)
            assert set(removed) == {
                *names,
                instance(),
                str(sandbox.info.inventory),
                str(sandbox.info.ssh_key),
                f"{sandbox.info.ssh_key}.pub",
            }
            assert not sandbox.info.ssh_key.exists()
            assert status(echo=quiet) is None
            assert down(sandbox.state_dir, echo=quiet) == []
        finally:
            decoy.remove(force=True)
            decoy_network.remove()
