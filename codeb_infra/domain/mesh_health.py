"""Health findings about the private network: a WireGuard interface that is down, a peer without
a recent handshake, and a socket listening on a public address that the server's role does not
expose. Pure: it judges what `codeb-health read` reported (its `wireguard` and `listeners`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codeb_infra.config.network import MESH_INTERFACE as INTERFACE
from codeb_infra.config.network import handshake_ages
from codeb_infra.domain.health import Finding

WILDCARDS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class ServerNetwork:
    """One server as the network checks see it."""

    name: str
    read: Mapping[str, Any] | None
    """`codeb-health read`, None when the server could not be read (its SSH finding says why)."""
    public_addresses: tuple[str, ...] = ()
    """Its addresses that the internet reaches (the documented public address, not the mesh's)."""
    allowed: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """What its role may expose there, by protocol: {"tcp": (22, 80, ...), "udp": (...)}."""
    mesh: bool = False


def findings(servers: list[ServerNetwork], stale_after: float) -> tuple[list[Finding], list[str]]:
    """Every network finding of the servers, and one line per check made."""
    found: list[Finding] = []
    checked: list[str] = []
    keys = {s.name: _public_key(s) for s in servers}
    for server in servers:
        if server.read is None:
            continue
        found += public_listeners(server)
        checked.append(f"{server.name}: listeners on public addresses")
        if server.mesh:
            peers = {name: key for name, key in keys.items() if name != server.name and key}
            found += mesh_links(server, peers, stale_after)
            checked.append(f"{server.name}: WireGuard {INTERFACE} and {len(peers)} peers")
    return found, checked


def _public_key(server: ServerNetwork) -> str | None:
    wireguard = (server.read or {}).get("wireguard") or {}
    return wireguard.get("public_key") if wireguard.get("up") else None


def public_listeners(server: ServerNetwork) -> list[Finding]:
    """Sockets on a wildcard or public address whose port the role does not expose."""
    found: list[Finding] = []
    public = set(WILDCARDS) | set(server.public_addresses)
    for listener in (server.read or {}).get("listeners") or []:
        proto, address, port = listener["proto"], listener["address"], int(listener["port"])
        if address not in public or port in server.allowed.get(proto, ()):
            continue
        where = "every address" if address in WILDCARDS else address
        found.append(
            Finding(
                server.name,
                f"public listener {proto}/{port}",
                f"something listens on {where} port {port}/{proto}, which this server's role does not expose",
                f"on {server.name}: `ss -lnp 'sport = :{port}'` names it; bind it to the mesh address or "
                "127.0.0.1 (the firewall drops it from the internet meanwhile)",
            )
        )
    return found


def mesh_links(server: ServerNetwork, peers: Mapping[str, str], stale_after: float) -> list[Finding]:
    """The server's WireGuard interface and its handshake with each peer whose key is known."""
    read = server.read or {}
    wireguard = read.get("wireguard") or {}
    if not wireguard.get("up"):
        return [
            Finding(
                server.name,
                f"WireGuard {INTERFACE}",
                f"the mesh interface is down ({wireguard.get('error') or 'not reported'}): "
                "its internal services are unreachable",
                f"on {server.name}: systemctl restart wg-quick@{INTERFACE}; journalctl -u wg-quick@{INTERFACE}",
            )
        ]
    found: list[Finding] = []
    ages = handshake_ages(wireguard.get("handshakes") or {}, float(read.get("time") or 0))
    for peer, key in sorted(peers.items()):
        if key not in ages:
            problem = f"{peer} is not a peer of {INTERFACE} here"
            fix = "codeb bootstrap -i INVENTORY (writes every server's mesh config)"
        else:
            age = ages[key]
            if age is not None and age <= stale_after:
                continue
            problem = (
                f"no handshake with {peer} yet"
                if age is None
                else f"last handshake with {peer} {age:.0f} s ago (more than {stale_after:.0f} s)"
            )
            fix = (
                f"check that {peer} is up and runs wg-quick@{INTERFACE}, and that UDP reaches its WireGuard "
                f"port from {server.name}"
            )
        found.append(Finding(server.name, f"WireGuard peer {peer}", problem, fix))
    return found


def unreachable_data(reach: Mapping[str, Any]) -> list[str]:
    """What `codeb-health reach` found unreachable, one line per variable (empty: all answer, or
    the server could not tell, e.g. an older tool)."""
    if "error" in reach:
        return []
    return [
        f"{name}'s server {found.get('address') or '(no address)'} does not answer "
        f"({found.get('error') or 'no answer'})"
        for name, found in sorted(reach.items())
        if isinstance(found, Mapping) and not found.get("ok")
    ]
