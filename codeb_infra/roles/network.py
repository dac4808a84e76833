"""Every server's part of the private network and its firewall: the WireGuard key and `wg0`
(host data `mesh_network`), and codeb's default-deny nftables table (on with the mesh, or host
data `firewall: true`). Also which address a server's internal services use: its mesh address
when the mesh is on, else its `private_address`.

`network()` runs first on every host from one call site: the key of each server is made by an
operation every host runs before the one that reads the other servers' keys."""

from __future__ import annotations

import time
from collections.abc import Mapping
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.host import Host
from pyinfra.operations import apt, files

from codeb_infra.config import network as config_network
from codeb_infra.config.network import (
    MESH_INTERFACE,
    ROLE_ORDER,
    WIREGUARD_PUBLIC_KEY,
    WIREGUARD_UNIT,
    MeshHost,
    NetworkSettings,
    firewall_rules,
    mesh_address,
    mesh_hosts,
)
from codeb_infra.facts.network import WireguardHandshakes, WireguardPublicKey
from codeb_infra.operations import nftables, wireguard

# Services bound to the mesh address wait for it at boot (a bind to a missing address fails).
MESH_BOUND_UNITS = {"storage": ("postgresql@.service", "redis-server.service")}
WAIT_FOR_MESH = (
    "# Written by codeb-infra: listens on the mesh address, which exists once wg0 is up.\n"
    f"[Unit]\nWants={WIREGUARD_UNIT}\nAfter={WIREGUARD_UNIT}\n"
)


def _roles(server: Host) -> tuple[str, ...]:
    """The server's roles; a migration target (group `targets`) has the role it will take over,
    so its firewall lets in what that role serves before the role moves to it."""
    roles = tuple(role for role in ROLE_ORDER if role in server.groups)
    target = server.data.get("migrate_target")
    return roles or ((target,) if target in ROLE_ORDER else ())


def internal_address(server: Host) -> str | None:
    """The address the server's internal services listen on and its peers reach it at."""
    settings = NetworkSettings.from_data(server.data)
    if settings.mesh:
        return mesh_address(settings, _roles(server), server.name)
    address: str | None = server.data.get("private_address")
    return address


class InternalData:
    """A server's host data with `private_address` read as its internal address, for settings
    that bind services (StorageSettings, StreamingSettings)."""

    def __init__(self, server: Host) -> None:
        self._data = server.data
        self._address = internal_address(server)

    def get(self, key: str, default: Any = None) -> Any:
        if key == "private_address" and self._address is not None:
            return self._address
        return self._data.get(key, default)


def internal_data(server: Host) -> InternalData:
    return InternalData(server)


def members() -> tuple[MeshHost, ...]:
    inventory = host.state.inventory
    return mesh_hosts((h.name, _roles(h), h.data) for h in inventory)


def peer_addresses(server: Host) -> list[str]:
    """Where the other servers reach this one from: their internal addresses."""
    found = []
    for other in server.state.inventory:
        address = internal_address(other) if other.name != server.name else None
        if address:
            found.append(address)
    return found


@deploy("WireGuard keys")
def network_keys() -> None:
    """Each server's WireGuard key pair, before any server's mesh config reads its peers' public
    keys: through pyinfra's API a run prepares one host's operations after another, so the keys
    are a phase of their own (in a deploy file the call order already makes them so)."""
    settings = NetworkSettings.from_data(host.data)
    if not settings.mesh:
        return
    packages = ["wireguard-tools"] + (["wireguard-go"] if settings.wireguard_userspace else [])
    # wireguard-tools recommends "wireguard-modules", which any linux-image provides: a server
    # (a container above all) would get a kernel it never boots. Debian's kernel has the module.
    apt.packages(name="WireGuard", packages=packages, update=True, cache_time=24 * 3600, no_recommends=True)
    wireguard.key(name="WireGuard key made on this server")


@deploy("Private network and firewall")
def network() -> None:
    settings = NetworkSettings.from_data(host.data)
    if not settings.mesh and not settings.firewall_on:
        return
    roles = _roles(host)
    packages = ["nftables"] if settings.firewall_on else []
    if settings.mesh:
        packages += ["wireguard-tools"] + (["wireguard-go"] if settings.wireguard_userspace else [])
    apt.packages(
        name="WireGuard and nftables", packages=packages, update=True, cache_time=24 * 3600, no_recommends=True
    )
    if settings.mesh:
        mesh = members()
        wireguard.key(name="WireGuard key made on this server")
        wireguard.mesh(
            name="WireGuard mesh wg0",
            mesh_network=str(settings.mesh_network),
            members=mesh,
            confirm_seconds=settings.network_confirm_seconds,
        )
        for role in roles:
            for unit in MESH_BOUND_UNITS.get(role, ()):
                files.put(
                    name=f"{unit} waits for the mesh",
                    src=StringIO(WAIT_FOR_MESH),
                    dest=f"/etc/systemd/system/{unit}.d/codeb-mesh.conf",
                    mode="644",
                    create_remote_dir=True,
                )
    if settings.firewall_on:
        nftables.firewall(
            name="Firewall: inbound only what the role serves, the rest from mesh peers",
            rules=firewall_rules(roles, settings, peer_addresses(host)),
            confirm_seconds=settings.network_confirm_seconds,
        )


def handshake_ages(now: float | None = None) -> Mapping[str, float | None]:
    """Seconds since each peer's latest handshake on the current host, by peer host name
    (None: never); empty when the mesh is off, every peer None when wg0 is down."""
    if not NetworkSettings.from_data(host.data).mesh:
        return {}
    stamps = host.get_fact(WireguardHandshakes, interface=MESH_INTERFACE) or {}
    by_key = config_network.handshake_ages(stamps, time.time() if now is None else now)
    result: dict[str, float | None] = {}
    for member in members():
        if member.host == host.name:
            continue
        other = host.state.inventory.get_host(member.host)
        key = other.get_fact(WireguardPublicKey, path=WIREGUARD_PUBLIC_KEY)
        result[member.host] = by_key.get(key) if key else None
    return result
