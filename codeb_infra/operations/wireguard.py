"""The WireGuard mesh on a server: its key, made on the server (the private key never leaves
it; only the public key is read), and `wg0` with every other server as a peer, brought up by
wg-quick at boot. Kernel WireGuard where the kernel has it, wireguard-go otherwise (wg-quick
falls back to it by itself)."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd

from codeb_infra.commands import confirm as confirm_commands
from codeb_infra.commands import wireguard as wg_commands
from codeb_infra.config.network import (
    MESH_INTERFACE,
    WIREGUARD_CONFIG,
    WIREGUARD_KEY,
    WIREGUARD_PUBLIC_KEY,
    WIREGUARD_UNIT,
    MeshHost,
    Peer,
    wireguard_config,
)
from codeb_infra.controller.confirm import confirm_change
from codeb_infra.facts.files import TextFile
from codeb_infra.facts.network import WireguardPublicKey
from codeb_infra.operations import Commands

# Undo: the saved peers applied to the running interface (never taken down), or no mesh at all.
RESTORE = (
    f"if [ -f {WIREGUARD_CONFIG} ]; then "
    f"{wg_commands.sync_line(MESH_INTERFACE, WIREGUARD_CONFIG, WIREGUARD_KEY)} || systemctl restart {WIREGUARD_UNIT}; "
    f"else systemctl stop {WIREGUARD_UNIT}; fi"
)


def _interface_section(config: str) -> str:
    return config.split("[Peer]", 1)[0]


@operation()
def key() -> Commands:
    """
    This server's WireGuard key pair: the private key made here, root only (0600), never
    replaced; the public key beside it (what the other servers' configs are made from).

    **Example:**

    .. code:: python

        wireguard.key()
    """
    private = host.get_fact(File, path=WIREGUARD_KEY)
    public = host.get_fact(WireguardPublicKey, path=WIREGUARD_PUBLIC_KEY)
    if private and public and private.get("mode") == 600:
        host.noop(f"{WIREGUARD_KEY} exists")
        return
    yield wg_commands.make_key(WIREGUARD_KEY, WIREGUARD_PUBLIC_KEY)


def _peer_key(name: str) -> str | None:
    other = host.state.inventory.get_host(name, default=None)
    if other is None:
        raise OperationError(f"{name} is not in the inventory")
    key: str | None = other.get_fact(WireguardPublicKey, path=WIREGUARD_PUBLIC_KEY)
    return key


@operation()
def mesh(*, mesh_network: str, members: tuple[MeshHost, ...], confirm_seconds: int = 60) -> Commands:
    """
    ``wg0`` with this server's mesh address and every other member as a peer (their public keys
    read from them as this runs, so their ``key`` must run first), started at boot. A change is
    undone by the server after ``confirm_seconds`` unless a new SSH connection confirms it.

    + mesh_network: the mesh's range, e.g. ``10.77.0.0/24``
    + members: every server of the mesh (``config.network.mesh_hosts``), this one included
    + confirm_seconds: how long a change waits for a new SSH connection before it is undone

    **Example:**

    .. code:: python

        wireguard.mesh(mesh_network="10.77.0.0/24", members=mesh_hosts(servers))
    """
    me = next((m for m in members if m.host == host.name), None)
    if me is None:
        raise OperationError(f"{host.name} is not a member of the mesh")
    peers, pending = [], []
    for member in members:
        if member.host == host.name:
            continue
        public = _peer_key(member.host)
        if public is None:
            pending.append(member.host)
            continue
        peers.append(
            Peer(
                host=member.host, address=member.address, endpoint=member.endpoint, port=member.port, public_key=public
            )
        )
    if pending and host.state.is_executing:
        raise OperationError(f"no WireGuard key on {', '.join(pending)} yet; run wireguard.key there first")
    config = wireguard_config(address=me.address, mesh_network=mesh_network, port=me.port, peers=peers)
    current = host.get_fact(TextFile, path=WIREGUARD_CONFIG)
    if current == config.rstrip("\n") and not pending:
        host.noop(f"{WIREGUARD_CONFIG} as wanted, {len(peers)} peers")
        yield from systemd.service._inner(service=WIREGUARD_UNIT, running=True, enabled=True)
        return
    yield confirm_commands.arm(paths=(WIREGUARD_CONFIG,), restore=RESTORE, seconds=confirm_seconds)
    yield from files.put._inner(src=StringIO(config), dest=WIREGUARD_CONFIG, user="root", group="root", mode="600")
    if current is not None and _interface_section(current) == _interface_section(config):
        # Only peers changed: applied to the running interface (no restart, no gap in the mesh).
        yield from systemd.service._inner(service=WIREGUARD_UNIT, running=True, enabled=True)
        yield wg_commands.sync(MESH_INTERFACE, WIREGUARD_CONFIG, WIREGUARD_KEY)
    else:
        yield from systemd.service._inner(service=WIREGUARD_UNIT, running=True, restarted=True, enabled=True)
    yield FunctionCommand(confirm_change, ("mesh change", confirm_seconds), {})
