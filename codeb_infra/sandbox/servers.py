"""The sandbox's network and containers on the engine: find, create, wait for and remove them.

Everything created here carries the label `codeb.sandbox=1`; nothing without it is ever touched.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import tarfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.types import Ulimit

from .engine import Engine
from .model import (
    DEFAULT_INSTANCE,
    FIRST_SSH_PORT,
    FIRST_WEB_PORT,
    LABEL,
    ROLE_LABEL,
    STATE_DIR_LABEL,
    SandboxError,
    ServerInfo,
    base_role,
    container_name,
    instance,
    network_name,
    server_index,
)

BOOT_TIMEOUT = 180
CONTAINER_HOSTS = ("app", "streaming")
# Hosts whose hard open-files limit is below the engine's default refuse to start containers.
ULIMITS = [Ulimit(name="nofile", soft=1024, hard=1024), Ulimit(name="nproc", soft=1024, hard=1024)]
# WireGuard in userspace (wireguard-go) needs the TUN device, and it and nftables need NET_ADMIN
# in the server's own network namespace; privileged servers have both already.
NETWORK_ADMIN = {"devices": ["/dev/net/tun:/dev/net/tun:rwm"], "cap_add": ["NET_ADMIN"]}


def _label_values() -> list[str]:
    """Label values that mark this instance's resources: its name, and for the default instance
    also `1`, what sandboxes made before instances existed carry."""
    return [instance(), *(["1"] if instance() == DEFAULT_INSTANCE else [])]


def _containers(engine: Engine) -> list[Container]:
    listed = engine.client.containers
    return [c for value in _label_values() for c in listed.list(all=True, filters={"label": f"{LABEL}={value}"})]


def find_containers(engine: Engine) -> dict[str, Container]:
    containers = _containers(engine)
    return {c.labels[ROLE_LABEL] if ROLE_LABEL in c.labels else str(c.name): c for c in containers}


def server_info(container: Container) -> ServerInfo:
    settings = container.attrs.get("NetworkSettings") or {}
    bindings = (settings.get("Ports") or {}).get("22/tcp") or []
    network = (settings.get("Networks") or {}).get(network_name()) or {}
    return ServerInfo(
        role=container.labels.get(ROLE_LABEL, container.name),
        container=container.name,
        container_id=container.id,
        state=container.status,
        ssh_port=int(bindings[0]["HostPort"]) if bindings else None,
        address=network.get("IPAddress") or None,
        http_port=_published(settings, "80/tcp"),
        https_port=_published(settings, "443/tcp"),
    )


def _published(settings: dict[str, Any], port: str) -> int | None:
    bindings = (settings.get("Ports") or {}).get(port) or []
    return int(bindings[0]["HostPort"]) if bindings else None


def ensure_network(engine: Engine) -> bool:
    """Create the sandbox network unless it exists; True when it was created."""
    try:
        network = engine.client.networks.get(network_name())
    except NotFound:
        engine.client.networks.create(network_name(), driver="bridge", labels={LABEL: instance()})
        return True
    if (network.attrs.get("Labels") or {}).get(LABEL) not in _label_values():
        raise SandboxError(
            f"A network named {network_name()} exists but was not made by the sandbox; remove or rename it."
        )
    return False


def published_ports(engine: Engine) -> set[int]:
    """Host ports that any container on the engine publishes, running or not.

    A rootful engine forwards them by firewall rules, not by a listening socket, so a bind test
    alone finds them free; and a container's record may outlive its processes.
    """
    ports: set[int] = set()
    for container in engine.client.containers.list(all=True):
        bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
        for binding in bindings.values():
            ports.update(int(b["HostPort"]) for b in binding or [] if str(b.get("HostPort", "")).isdigit())
    return ports


def free_ports(count: int, taken: Iterable[int], start: int = FIRST_SSH_PORT) -> list[int]:
    """The first `count` loopback ports from `start` up that are free and not in `taken`."""
    held = set(taken)
    ports: list[int] = []
    port = start
    while len(ports) < count:
        if port > 65535:
            raise SandboxError(f"No free loopback port from {start} up for the sandbox's SSH.")
        if port not in held and _port_is_free(port):
            ports.append(port)
        port += 1
    return ports


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def create_server(
    engine: Engine, *, role: str, image: str, ssh_port: int, public_key: str, state_dir: Path
) -> Container:
    """Create and start one server whose root account trusts `public_key`. `role` is the server's
    name: one of the four roles, or a spare (`storage-target`), built like the role it stands by for."""
    try:
        container = engine.client.containers.create(
            image,
            name=container_name(role),
            hostname=role,
            detach=True,
            labels={LABEL: instance(), ROLE_LABEL: role, STATE_DIR_LABEL: str(state_dir)},
            ports={"22/tcp": ("127.0.0.1", ssh_port), **_web_ports(engine, base_role(role))},
            ulimits=ULIMITS,
            network=network_name(),
            networking_config={
                network_name(): engine.client.api.create_endpoint_config(
                    aliases=[role], ipv4_address=_fixed_address(engine, role)
                )
            },
            **_systemd_options(engine, base_role(role)),
        )
    except APIError as error:
        raise SandboxError(f"Could not create {container_name(role)}: {error.explanation or error}") from error
    try:
        container.put_archive("/", authorized_keys_archive(public_key))
        container.start()
    except APIError as error:
        container.remove(force=True)  # a server that never trusted the key: the next `up` creates it anew
        raise SandboxError(f"Could not start {container_name(role)}: {error.explanation or error}") from error
    return container


def _fixed_address(engine: Engine, role: str) -> str | None:
    """The server's own address on the sandbox network (the subnet's 10th host on for app, and so
    on, the spares after backup): a restart keeps it, as a real server keeps its address, so the
    mesh's endpoints stay true."""
    configs = (engine.client.networks.get(network_name()).attrs.get("IPAM") or {}).get("Config") or []
    subnet = next((c["Subnet"] for c in configs if "." in str(c.get("Subnet", ""))), None)
    if subnet is None:
        return None
    return str(ipaddress.ip_network(subnet).network_address + 10 + server_index(role))


def _web_ports(engine: Engine, role: str) -> dict[str, tuple[str, int]]:
    """Caddy on the app server, reachable from the host's loopback (HTTP and HTTPS)."""
    if role != "app":
        return {}
    http, https = free_ports(2, published_ports(engine), start=FIRST_WEB_PORT)
    return {"80/tcp": ("127.0.0.1", http), "443/tcp": ("127.0.0.1", https)}


def _systemd_options(engine: Engine, role: str) -> dict[str, Any]:
    # The app and streaming servers run podman themselves, which needs a privileged container.
    if engine.is_podman:
        # podman sees /sbin/init as the command and sets systemd up (tmpfs /run, cgroups) itself.
        return {"privileged": True} if role in CONTAINER_HOSTS else {"privileged": False, **NETWORK_ADMIN}
    # Docker has no systemd mode: give systemd the tmpfs mounts it expects and a writable cgroup
    # tree in the container's own cgroup namespace, as kind does for its nodes.
    return {
        "privileged": True,
        "tmpfs": {"/run": "", "/run/lock": "", "/tmp": ""},
        "cgroupns": "private",
        "environment": {"container": "docker"},
    }


def authorized_keys_archive(public_key: str) -> bytes:
    """A tar of root's `.ssh/authorized_keys`, ending at its end-of-archive blocks.

    Python pads a tar to a whole 10 KiB record; podman's copier stops reading at the end-of-archive
    blocks and the padding still on its way then fails the upload with a broken pipe (buildah #6573),
    more often the busier the engine is. Without the padding there is nothing left to send.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        ssh_dir = tarfile.TarInfo("root/.ssh")
        ssh_dir.type = tarfile.DIRTYPE
        ssh_dir.mode = 0o700
        archive.addfile(ssh_dir)
        data = public_key.strip().encode() + b"\n"
        keys = tarfile.TarInfo("root/.ssh/authorized_keys")
        keys.size = len(data)
        keys.mode = 0o600
        archive.addfile(keys, io.BytesIO(data))
        end = archive.offset + 2 * tarfile.BLOCKSIZE
    return buffer.getvalue()[:end]


def wait_until_booted(container: Container, ssh_port: int, timeout: float = BOOT_TIMEOUT) -> str:
    """Wait for sshd's banner on the published port and for systemd to finish booting.

    Returns systemd's verdict (`running`, or `degraded` with the failed units).
    """
    deadline = time.monotonic() + timeout
    while not _ssh_banner(ssh_port):
        if time.monotonic() > deadline:
            raise SandboxError(f"{container.name}: sshd did not answer on 127.0.0.1:{ssh_port} in {timeout:.0f}s.")
        time.sleep(0.5)
    remaining = max(1, int(deadline - time.monotonic()))
    _, output = container.exec_run(["timeout", str(remaining), "systemctl", "is-system-running", "--wait"])
    verdict = cast(bytes, output).decode(errors="replace").strip()  # not streamed: one bytes value
    if verdict == "running":
        return verdict
    _, failed = container.exec_run(["systemctl", "--failed", "--plain", "--no-legend"])
    failed_units = cast(bytes, failed).decode(errors="replace").strip()
    return f"{verdict}: {failed_units}"


def ssh_answers(port: int, within: float = 6.0) -> bool:
    """Whether sshd's banner comes on the published port within `within` seconds."""
    deadline = time.monotonic() + within
    while not _ssh_banner(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _ssh_banner(port: int) -> bool:
    # A published port may accept connections before sshd listens behind it; only a banner counts.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def remove_all(engine: Engine) -> list[str]:
    """Remove every container and network labelled as the sandbox's; return their names."""
    removed: list[str] = []
    for container in _containers(engine):
        container.remove(force=True)
        removed.append(str(container.name))
    networks = engine.client.networks
    for network in [n for value in _label_values() for n in networks.list(filters={"label": f"{LABEL}={value}"})]:
        network.remove()
        removed.append(str(network.name))
    return removed
