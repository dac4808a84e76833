"""Shared setup for the sandbox tests: the `sandbox` marker, the podman settings this kind of
host needs, one sandbox shared by the tests that only use it, and a second one with spare servers
for the migration tests (which move roles between servers, so never on the shared one)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codeb_infra.config.network import NetworkSettings, mesh_address
from codeb_infra.sandbox import SandboxInfo, down, status, up
from codeb_infra.sandbox.inventory import SHARED_DATA
from codeb_infra.sandbox.model import INSTANCE_VAR, instance
from codeb_infra.sandbox.state import ENV_VAR as STATE_DIR_VAR
from tests.support.podman import CONTAINERS_CONF
from tests.support.sandbox_ssh import ssh

SHARED_SANDBOX = "shared_sandbox"
MIGRATION_SANDBOX = "migration_sandbox"
MIGRATION_SPARES = ("storage", "app")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox: four local servers over SSH (slow)")
    config.addinivalue_line("markers", "restarts_servers: restarts sandbox servers (runs last)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that make and remove a sandbox of their own (test_sandbox.py) need the engine to hold
    # none: run them before the shared one is brought up. The sort is stable.
    # test_sandbox.py needs an empty engine, so it goes first; tests that restart a server go last
    # (it keeps its address, but its services come back one by one).
    items.sort(
        key=lambda item: (
            bool({SHARED_SANDBOX, "bootstrapped", MIGRATION_SANDBOX} & set(getattr(item, "fixturenames", ()))),
            item.get_closest_marker("restarts_servers") is not None,
        )
    )


@pytest.fixture(scope="session", autouse=True)
def containers_conf() -> Iterator[None]:
    """Point a podman service the sandbox starts at settings that work on cgroups-v1 VMs too."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("CONTAINERS_CONF"):
            patch.setenv("CONTAINERS_CONF", str(CONTAINERS_CONF))
        yield


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="session")
def shared_sandbox(containers_conf: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    """The sandbox that already runs on this engine (left running afterwards), else a new one,
    removed when the session ends. Only a sandbox made here is ever taken down here."""
    running = status(echo=_quiet)
    if running is not None:
        # `up` fills in a missing server and rewrites an inventory whose addresses went stale.
        yield up(running.state_dir, echo=_quiet)
        return
    state_dir = tmp_path_factory.mktemp("shared-sandbox")
    info = up(state_dir, echo=_quiet)
    try:
        yield info
    finally:
        down(state_dir, echo=_quiet)


REPO = Path(__file__).resolve().parents[2]


def codeb(
    b: Bootstrapped, *args: str, inventory: str | Path | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`codeb ARGS -i` the sandbox's inventory (or ``inventory``), as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "codeb_infra.cli", *args, "-i", str(inventory or b.info.inventory)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def on(b: Bootstrapped, role: str, command: str) -> str:
    """``command`` on a sandbox server over SSH, which must succeed: its stdout, stripped."""
    result = ssh(b.info, role, command)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout.strip()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def must(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass
class Run:
    output: str
    seconds: float


@dataclass
class Bootstrapped:
    info: SandboxInfo
    first: Run
    second: Run

    def address(self, role: str) -> str:
        address = self.info.servers[role].address
        assert address
        return address

    def internal(self, role: str) -> str:
        return internal_address(self.info, role)


def start_wireguard(b: Bootstrapped, role: str) -> None:
    """Start a server's mesh interface again and wait until it has greeted every peer: it greets a
    peer when it has something to send it (an idle peer would rekey by itself only within two
    minutes), so each peer is sent a connection."""
    peers = " ".join(b.internal(other) for other in ("app", "streaming", "storage", "backup") if other != role)
    must(
        ssh(
            b.info,
            role,
            f"systemctl start wg-quick@wg0.service; for i in $(seq 60); do"
            f' for a in {peers}; do timeout 1 bash -c "</dev/tcp/$a/9100" 2>/dev/null; done;'
            " wg show wg0 latest-handshakes | awk '$2 == 0 {z=1} END {exit z}' && exit 0; sleep 0.5;"
            " done; echo 'a peer never greeted'; exit 1",
        )
    )


def internal_address(info: SandboxInfo, role: str) -> str:
    """Where the other servers reach a server's services: its mesh address when the sandbox's
    inventory turns the mesh on, else its address on the sandbox network."""
    settings = NetworkSettings.from_data(SHARED_DATA)
    address = mesh_address(settings, [role], role) if settings.mesh else info.servers[role].address
    assert address
    return address


def bootstrap(info: SandboxInfo) -> Run:
    """`pyinfra INVENTORY deploys/bootstrap.py`, as a user runs it. -vvv prints every command and
    its output, so a secret in either would show up in what the tests read."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "-vvv", str(info.inventory), "deploys/bootstrap.py"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1800,
        check=False,
        cwd=REPO,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-6000:]
    return Run(result.stdout, seconds)


@pytest.fixture(scope="session")
def bootstrapped(shared_sandbox: SandboxInfo) -> Bootstrapped:
    """The shared sandbox after two bootstraps of all four servers (the second must change nothing)."""
    for role in ("storage", "backup"):
        release = must(ssh(shared_sandbox, role, ". /etc/os-release && echo $VERSION_CODENAME")).strip()
        if release != "bookworm":
            pytest.fail(
                f"the sandbox's {role} server runs {release}, not bookworm; "
                "it predates per-role releases: `codeb sandbox down`, then up again"
            )
    first = bootstrap(shared_sandbox)
    second = bootstrap(shared_sandbox)
    print(f"\nbootstrap of all four servers: first run {first.seconds:.1f}s, second run {second.seconds:.1f}s")
    return Bootstrapped(shared_sandbox, first, second)


@pytest.fixture(scope="session")
def migration_sandbox(containers_conf: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bootstrapped]:
    """A sandbox of its own (instance `{instance}-mig`) with the four servers bootstrapped once and
    spares `storage-target` and `app-target` (only their mesh and firewall: `codeb migrate`
    bootstraps a target itself). Made anew and removed at the session's end: a migration leaves
    roles moved."""
    name = f"{instance()}-mig"
    state_dir = tmp_path_factory.mktemp("migration-sandbox")

    def _as_migration_sandbox() -> pytest.MonkeyPatch:
        patch = pytest.MonkeyPatch()
        patch.setenv(INSTANCE_VAR, name)
        patch.delenv(STATE_DIR_VAR, raising=False)
        return patch

    patch = _as_migration_sandbox()
    try:
        left = status(echo=_quiet)
        if left is not None:
            down(left.state_dir, echo=_quiet)
        info = up(state_dir, spares=MIGRATION_SPARES, echo=_quiet)
    finally:
        patch.undo()
    try:
        first = bootstrap(info)
        print(f"\nbootstrap of the migration sandbox (four servers, two spares): {first.seconds:.1f}s")
        yield Bootstrapped(info, first, first)
    finally:
        patch = _as_migration_sandbox()
        try:
            down(state_dir, echo=_quiet)
        finally:
            patch.undo()
