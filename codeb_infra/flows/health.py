"""`codeb health` (and the API's `health_check` tool): read every server once, let
`domain.health` decide, report. Reads only; nothing on a server changes.

    from codeb_infra.flows import health
    report = health.check("inventory.py")   # domain.health.Report: .ok, .findings, .as_dict()
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyinfra import host
from pyinfra.api import StringCommand

from codeb_infra.commands import health as health_commands
from codeb_infra.config.app import DnsSettings, HostSettings
from codeb_infra.config.network import MESH_INTERFACE, STALE_HANDSHAKE_SECONDS, NetworkSettings, public_ports
from codeb_infra.config.roles import StorageSettings
from codeb_infra.controller import runner
from codeb_infra.domain import health, mesh_health
from codeb_infra.domain.errors import CodebError
from codeb_infra.facts.health import HealthProbe, HealthRead
from codeb_infra.flows import backups, reports
from codeb_infra.roles import host_roles

CADDY_LOCAL_ROOT = "/var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt"


def layout(host_data: Any) -> health.AppLayout:
    settings = HostSettings.from_data(host_data)
    dns = DnsSettings.from_data(host_data)
    return health.AppLayout(
        base_domain=settings.base_domain,
        zones=dns.zones,
        addresses=tuple(a for t, a in dns.addresses().items() if t == "A"),
        sites_dir=settings.sites_dir,
        locks_dir=settings.locks_dir,
    )


def _probe(read: dict[str, Any]) -> dict[str, Any]:
    """Ask Caddy and PowerDNS on the app server about every domain the registry names."""
    settings = HostSettings.from_data(host.data)
    dns = DnsSettings.from_data(host.data)
    try:
        state = health.app_state(read)
    except CodebError:
        return {}
    targets, resolve = health.probe_targets(state, layout(host.data))
    listen = next((a for a in dns.dns_listen if a not in ("0.0.0.0", "::")), "127.0.0.1")
    return host.get_fact(
        HealthProbe,
        targets=[(t.domain, t.path) for t in targets],
        resolve=resolve,
        scheme="http" if settings.tls == "off" else "https",
        port=80 if settings.tls == "off" else 443,
        cafiles=[CADDY_LOCAL_ROOT, *([settings.acme_ca_root] if settings.acme_ca_root else [])],
        dns_server=listen,
        dns_port=dns.dns_port,
    )


@dataclass(frozen=True)
class ServerPlan:
    """What to ask one server and how to judge its network, from its name, roles and host data
    (the same for a server read over pyinfra's SSH and one read through its reports)."""

    name: str
    roles: frozenset[str]
    units: tuple[health.Unit, ...]
    disks: tuple[str, ...]
    wireguard: str
    public_addresses: tuple[str, ...]
    allowed: dict[str, tuple[int, ...]]
    mesh: bool


def plan(name: str, roles: set[str] | frozenset[str], data: Any) -> ServerPlan:
    postgres_unit = StorageSettings.from_data(data).postgres_unit if "storage" in roles else ""
    network = NetworkSettings.from_data(data)
    # With the mesh, internal services leave the documented (private_address) one to the internet.
    public = {data.get("public_address"), data.get("private_address") if network.mesh else None}
    return ServerPlan(
        name,
        frozenset(roles),
        tuple(health.role_units(set(roles), *([postgres_unit] if postgres_unit else []))),
        tuple(health.disk_paths(set(roles))),
        MESH_INTERFACE if network.mesh else "",
        tuple(str(a) for a in public if a),
        public_ports(set(roles), network),
        network.mesh,
    )


def read_command(server: ServerPlan, **app: str) -> StringCommand:
    """The `codeb-health read` of this server (what its HealthRead fact and its report both run)."""
    return health_commands.read(
        units=[u.unit for u in server.units], disks=list(server.disks), wireguard=server.wireguard, **app
    )


def _found(
    server: ServerPlan, read: dict[str, Any] | None, asked_at: float | None, error: str | None, data: Any
) -> dict[str, Any]:
    return {
        "roles": server.roles,
        "units": server.units,
        "read": read,
        "probe": None,
        "asked_at": asked_at,
        "error": error,
        "layout": layout(data) if "app" in server.roles else None,
        "network": None
        if read is None
        else mesh_health.ServerNetwork(
            server.name,
            None if "error" in read else read,
            public_addresses=server.public_addresses,
            allowed=server.allowed,
            mesh=server.mesh,
        ),
    }


def _read_server(error: str | None) -> dict[str, Any]:
    roles = host_roles()
    server = plan(host.name, roles, host.data)
    if error is not None:
        return _found(server, None, None, error, host.data)
    app: dict[str, str] = {}
    if "app" in roles:
        settings = HostSettings.from_data(host.data)
        app = {
            "registry": settings.registry_dir,
            "sites": settings.sites_dir,
            "upstreams": settings.upstreams_dir,
            "locks": settings.locks_dir,
        }
    asked_at = time.time()
    read = host.get_fact(
        HealthRead,
        units=[u.unit for u in server.units],
        disks=list(server.disks),
        wireguard=server.wireguard,
        **app,
    )
    found = _found(server, read, asked_at, None, host.data)
    if "app" in roles and "error" not in read:
        found["probe"] = _probe(read)
    for group, reader in backups.READERS.items():
        if group in roles:
            found[group] = reader()
    if "app" in roles:
        found["remote"] = {r.name: _remote_found(r) for r in reports.read_remote()}
    return found


def _remote_found(remote: reports.RemoteRead) -> dict[str, Any]:
    """A server read through its reports, as if read over pyinfra's SSH."""
    server = plan(remote.name, remote.roles, remote.data)
    if remote.error is not None:
        return _found(server, None, None, remote.error, remote.data)
    found = _found(server, remote.parsed("health", HealthRead), remote.asked_at, None, remote.data)
    found.update(backups.from_reports(remote))
    return found


def check(inventory: str, now: datetime | None = None) -> health.Report:
    """Every server, project and backup of ``inventory`` checked; the report lists each finding
    with the command that fixes it (``report.ok`` when there is none)."""
    results = runner.read_every_host(inventory, _read_server)
    for result in list(results.values()):
        for name, remote in result.pop("remote", {}).items():
            results.setdefault(name, remote)
    servers = [
        health.ServerSnapshot(
            name,
            r["roles"],
            read=r["read"],
            probe=r["probe"],
            error=r["error"],
            asked_at=r["asked_at"],
            units=r["units"],
        )
        for name, r in results.items()
    ]
    backup_found: dict[str, Any] = {}
    for result in results.values():
        for group in backups.READERS:
            if group in result and group not in backup_found:
                backup_found[group] = result[group]
    app_layout = next((r["layout"] for r in results.values() if r["layout"] is not None), None)
    if app_layout is None:
        raise CodebError(f"{inventory} has no app server (group `app`)")
    moment = now or datetime.now(UTC)
    report = health.evaluate(health.Snapshot(servers, app_layout, moment, backups.checks(backup_found, moment)))
    networks = [r["network"] for r in results.values() if r["network"] is not None]
    found, checked = mesh_health.findings(networks, STALE_HANDSHAKE_SECONDS)
    return health.Report(report.findings + found, report.checked + checked)
