"""The private network between the servers (a WireGuard mesh) and each server's inbound firewall:
settings read from host data, every server's mesh address, and the text of `wg0.conf` and of the
nftables table. Pure: values in, validated values or text out."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, field_validator

from codeb_infra.config.monitoring import EXPORTER_PORTS
from codeb_infra.config.roles import HostData, _from_data, ip_address, network
from codeb_infra.domain.errors import CodebError
from codeb_infra.templates import render

WIREGUARD_DIR = "/etc/wireguard"
MESH_INTERFACE = "wg0"
WIREGUARD_CONFIG = f"{WIREGUARD_DIR}/{MESH_INTERFACE}.conf"
WIREGUARD_KEY = f"{WIREGUARD_DIR}/codeb.key"
WIREGUARD_PUBLIC_KEY = f"{WIREGUARD_DIR}/codeb.pub"
WIREGUARD_UNIT = f"wg-quick@{MESH_INTERFACE}.service"
FIREWALL_DIR = "/etc/codeb/nftables"
FIREWALL_RULES = f"{FIREWALL_DIR}/codeb.nft"
NFTABLES_CONF = "/etc/nftables.conf"
FIREWALL_TABLE = ("inet", "codeb")
# Handshakes are renewed every two minutes while a peer is alive (PersistentKeepalive makes sure
# there is traffic); older than this, the link is down.
STALE_HANDSHAKE_SECONDS = 180
KEEPALIVE_SECONDS = 25

# A mesh address derived from the role: the n-th host of the network, in this order.
ROLE_ORDER = ("app", "streaming", "storage", "backup")
ANYWHERE = ("0.0.0.0/0", "::/0")
_WG_KEY = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")
_INTERFACE_GLOB = re.compile(r"^[A-Za-z0-9_.-]{1,14}\*?$")


def wireguard_key(value: object) -> str:
    """A WireGuard public key (32 bytes, base64)."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _WG_KEY.fullmatch(text):
        raise CodebError(f"not a WireGuard public key: {str(value)[:60]!r}")
    return text


class NetworkSettings(BaseModel):
    """Host data of one server for the mesh and the firewall.

    The mesh is on when `mesh_network` is set (e.g. `10.77.0.0/24`); each server's address in it
    is `mesh_address`, or the network's n-th address by role (app 1, streaming 2, storage 3,
    backup 4). Peers reach each other at `wireguard_endpoint` (default `public_address`, else
    `private_address`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mesh_network: str | None = None
    mesh_address: str | None = None
    wireguard_port: int = 51820
    wireguard_endpoint: str | None = None
    wireguard_userspace: bool = False
    """wireguard-go instead of the kernel's WireGuard (servers whose kernel has no module)."""
    firewall: bool | None = None
    """Default-deny inbound nftables rules; on by default with the mesh."""
    ssh_allowed_from: tuple[str, ...] = ANYWHERE
    firewall_trusted_interfaces: tuple[str, ...] = ("podman*",)
    """Interfaces of the server's own container networks (containers asking the host's DNS)."""
    network_confirm_seconds: int = 60
    """A firewall or mesh change not confirmed by a new SSH connection within this is undone."""

    @field_validator("mesh_network")
    @classmethod
    def _mesh_network(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parsed = ipaddress.ip_network(str(value), strict=True)
        except ValueError:
            raise ValueError(f"invalid network {value!r}: expected a CIDR like 10.77.0.0/24") from None
        if not parsed.is_private or parsed.num_addresses < 8:
            raise ValueError("expected a private range of at least 8 addresses, like 10.77.0.0/24")
        return str(parsed)

    @field_validator("mesh_address", "wireguard_endpoint")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return ip_address(value)
        except CodebError as error:
            raise ValueError(str(error)) from None

    @field_validator("wireguard_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be between 1 and 65535")
        return value

    @field_validator("network_confirm_seconds")
    @classmethod
    def _confirm(cls, value: int) -> int:
        if not 10 <= value <= 600:
            raise ValueError("between 10 and 600 seconds")
        return value

    @field_validator("ssh_allowed_from", mode="before")
    @classmethod
    def _sources(cls, value: object) -> tuple[str, ...]:
        values = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        if not values:
            raise ValueError("at least one address or network (default: anywhere)")
        try:
            return tuple(network(v) for v in values)
        except CodebError as error:
            raise ValueError(str(error)) from None

    @field_validator("firewall_trusted_interfaces", mode="before")
    @classmethod
    def _interfaces(cls, value: object) -> tuple[str, ...]:
        values = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        for item in values:
            if not isinstance(item, str) or not _INTERFACE_GLOB.fullmatch(item):
                raise ValueError(f"invalid interface name {item!r}")
        return tuple(values)

    @classmethod
    def from_data(cls, data: HostData) -> NetworkSettings:
        result: NetworkSettings = _from_data(cls, data, cls.model_fields)
        return result

    @property
    def mesh(self) -> bool:
        return self.mesh_network is not None

    @property
    def firewall_on(self) -> bool:
        return self.mesh if self.firewall is None else self.firewall


class MeshHost(BaseModel):
    """One server as the mesh sees it."""

    model_config = ConfigDict(frozen=True)

    host: str
    roles: tuple[str, ...]
    address: str
    """Its address in the mesh."""
    endpoint: str
    """Where the other servers send its WireGuard packets."""
    port: int


class Peer(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str
    address: str
    endpoint: str
    port: int
    public_key: str


def _role_of(roles: Iterable[str]) -> str | None:
    return next((role for role in ROLE_ORDER if role in set(roles)), None)


def mesh_address(settings: NetworkSettings, roles: Iterable[str], host: str = "this server") -> str:
    """The server's mesh address: as given, else derived from its role."""
    if settings.mesh_network is None:
        raise CodebError(f"{host}: no mesh (set `mesh_network` in host data)")
    subnet = ipaddress.ip_network(settings.mesh_network)
    if settings.mesh_address is not None:
        address = ipaddress.ip_address(settings.mesh_address)
        if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
            raise CodebError(f"{host}: mesh_address {address} is not a host address of {subnet}")
        return str(address)
    role = _role_of(roles)
    if role is None:
        raise CodebError(f"{host}: has no role to derive a mesh address from; set `mesh_address`")
    return str(subnet.network_address + 1 + ROLE_ORDER.index(role))


def mesh_hosts(servers: Iterable[tuple[str, Sequence[str], HostData]]) -> tuple[MeshHost, ...]:
    """Every server of the mesh from (name, roles, host data); one network, distinct addresses."""
    found: list[MeshHost] = []
    networks: set[str] = set()
    for name, roles, data in servers:
        settings = NetworkSettings.from_data(data)
        if not settings.mesh:
            continue
        networks.add(str(settings.mesh_network))
        endpoint = settings.wireguard_endpoint or data.get("public_address") or data.get("private_address")
        if endpoint is None:
            raise CodebError(f"{name}: set `wireguard_endpoint` (or `private_address`) in host data")
        found.append(
            MeshHost(
                host=name,
                roles=tuple(roles),
                address=mesh_address(settings, roles, name),
                endpoint=ip_address(endpoint, f"endpoint of {name}"),
                port=settings.wireguard_port,
            )
        )
    if len(networks) > 1:
        raise CodebError(f"the servers name different mesh networks: {', '.join(sorted(networks))}")
    taken: dict[str, str] = {}
    for item in found:
        if item.address in taken:
            raise CodebError(f"{item.host} and {taken[item.address]} have the same mesh address {item.address}")
        taken[item.address] = item.host
    return tuple(found)


def wireguard_config(*, address: str, mesh_network: str, port: int, peers: Iterable[Peer]) -> str:
    """`wg0.conf` for wg-quick. The private key stays in its own root-only file, set by PostUp:
    this text holds no secret."""
    prefix = ipaddress.ip_network(mesh_network).prefixlen
    return render(
        "wg0.conf.j2",
        address=f"{ip_address(address)}/{prefix}",
        port=int(port),
        key_file=WIREGUARD_KEY,
        keepalive=KEEPALIVE_SECONDS,
        peers=[
            {
                "host": p.host,
                "public_key": wireguard_key(p.public_key),
                "address": ip_address(p.address),
                "endpoint": _endpoint(p.endpoint, p.port),
            }
            for p in sorted(peers, key=lambda p: ipaddress.ip_address(p.address))
        ],
    )


def _endpoint(address: str, port: int) -> str:
    address = ip_address(address)
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class Rule(BaseModel):
    """What one rule lets in (all of it from anywhere unless `sources` says otherwise)."""

    model_config = ConfigDict(frozen=True)

    why: str
    protocol: str
    ports: tuple[int, ...]
    sources: tuple[str, ...] = ANYWHERE


def allowed_ports(roles: Iterable[str], settings: NetworkSettings) -> tuple[Rule, ...]:
    """What each role exposes to the internet; everything else only to mesh peers."""
    wanted = set(roles)
    rules = [
        Rule(why="SSH", protocol="tcp", ports=(22,), sources=settings.ssh_allowed_from),
    ]
    if settings.mesh:
        rules.append(Rule(why="WireGuard", protocol="udp", ports=(settings.wireguard_port,)))
    # Caddy serves the app server's sites, and the streaming server's ws.{base_domain} in front of
    # Centrifugo's client endpoints (Centrifugo itself listens on loopback and the mesh only).
    if wanted & {"app", "streaming"}:
        rules += [
            Rule(why="HTTP and HTTPS", protocol="tcp", ports=(80, 443)),
            Rule(why="HTTP/3", protocol="udp", ports=(443,)),
        ]
    if "app" in wanted:
        rules += [
            Rule(why="DNS", protocol="tcp", ports=(53,)),
            Rule(why="DNS", protocol="udp", ports=(53,)),
        ]
    return tuple(rules)


def public_ports(roles: Iterable[str], settings: NetworkSettings) -> dict[str, tuple[int, ...]]:
    """`{"tcp": (22, 80, ...), "udp": (...)}`: what a scan from the internet may find open."""
    found: dict[str, set[int]] = {"tcp": set(), "udp": set()}
    for rule in allowed_ports(roles, settings):
        found[rule.protocol].update(rule.ports)
    return {protocol: tuple(sorted(ports)) for protocol, ports in found.items()}


def firewall_rules(
    roles: Iterable[str], settings: NetworkSettings, mesh_peers: Iterable[str], monitor: str | None = None
) -> str:
    """The `inet codeb` table: inbound dropped but for the role's ports, the mesh peers (over
    wg0 only) and the server's own container networks. Replaced as a whole, in one transaction,
    and no other table is touched (podman's own rules live in theirs). With ``monitor`` (the
    monitoring server's internal address), the exporters answer that peer only."""
    family, table = FIREWALL_TABLE
    peers = sorted({ip_address(p) for p in mesh_peers}, key=ipaddress.ip_address)
    rules = []
    for rule in allowed_ports(roles, settings):
        ports = ", ".join(str(p) for p in rule.ports)
        match = f"{rule.protocol} dport {{ {ports} }}"
        if rule.sources == ANYWHERE:
            rules.append({"why": rule.why, "match": match})
            continue
        for version, kind in ((4, "ip"), (6, "ip6")):
            sources = [s for s in rule.sources if ipaddress.ip_network(s).version == version]
            if sources:
                rules.append({"why": rule.why, "match": f"{kind} saddr {{ {', '.join(sources)} }} {match}"})
    return render(
        "codeb.nft.j2",
        family=family,
        table=table,
        interface=MESH_INTERFACE if settings.mesh else None,
        peers6=[p for p in peers if ":" in p],
        peers4=[p for p in peers if ":" not in p],
        trusted=settings.firewall_trusted_interfaces,
        rules=rules,
        exporters=_exporters_rule(monitor),
    )


def _exporters_rule(monitor: str | None) -> str | None:
    """The match of mesh traffic to an exporter from anyone but the monitoring server (dropped)."""
    if monitor is None:
        return None
    address = ip_address(monitor)
    kind = "ip6" if ":" in address else "ip"
    return f"{kind} saddr != {address} tcp dport {{ {', '.join(map(str, sorted(EXPORTER_PORTS)))} }}"


def nftables_conf() -> str:
    """/etc/nftables.conf loading only codeb's table: Debian's default starts by flushing the
    whole ruleset, which would take podman's rules with it on every reload."""
    return (
        "#!/usr/sbin/nft -f\n"
        "# Written by codeb-infra: loads codeb's table only; never `flush ruleset` (podman keeps its own).\n"
        f'include "{FIREWALL_RULES}"\n'
    )


def handshake_ages(handshakes: Mapping[str, int], now: float) -> dict[str, float | None]:
    """Seconds since each peer's latest handshake (None: never), from `wg show wg0
    latest-handshakes` (public key -> epoch seconds, 0 for never)."""
    return {key: (None if stamp == 0 else max(0.0, now - stamp)) for key, stamp in handshakes.items()}


def stale_peers(ages: Mapping[str, float | None], limit: float = STALE_HANDSHAKE_SECONDS) -> list[str]:
    """The peers whose handshake is older than `limit` seconds or never happened."""
    return sorted(key for key, age in ages.items() if age is None or age > limit)
