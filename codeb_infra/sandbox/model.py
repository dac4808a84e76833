"""What a sandbox is: four servers with fixed names and labels (plus, on demand, spare servers
that a migration moves a role to), and what `up` and `status` report about them."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.errors import CodebError

ROLES: tuple[str, ...] = ("app", "streaming", "storage", "backup")
SPARE_ROLES: tuple[str, ...] = ("storage", "app")
"""Roles a spare server (`codeb sandbox up --spare ROLE`) can stand by for, in address order."""
SPARE_SUFFIX = "-target"
INSTANCE_VAR = "CODEB_SANDBOX_NAME"
DEFAULT_INSTANCE = "codeb-sandbox"
LABEL = "codeb.sandbox"
ROLE_LABEL = "codeb.sandbox.role"
STATE_DIR_LABEL = "codeb.sandbox.state-dir"
FIRST_SSH_PORT = 2221
FIRST_WEB_PORT = 8480


class SandboxError(CodebError):
    """The sandbox cannot be brought to the asked state; the message says what to do about it."""


def instance() -> str:
    """The sandbox's name ($CODEB_SANDBOX_NAME, default codeb-sandbox): its network, the prefix of
    its servers' names and its label value, so several sandboxes can live on one engine."""
    name = os.environ.get(INSTANCE_VAR) or DEFAULT_INSTANCE
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", name):
        raise SandboxError(f"${INSTANCE_VAR}={name!r}: use up to 31 lowercase letters, digits or '-'")
    return name


def network_name() -> str:
    return instance()


def container_name(role: str) -> str:
    """The container of a server: `{instance}-app`, or `{instance}-storage-target` for a spare."""
    return f"{instance()}-{role}"


def spare_name(role: str) -> str:
    """The server name of the spare for ROLE: `storage-target`."""
    if role not in SPARE_ROLES:
        raise SandboxError(f"no spare server for {role!r}: choose one of {', '.join(SPARE_ROLES)}")
    return f"{role}{SPARE_SUFFIX}"


def spare_role(server: str) -> str | None:
    """The role a spare server stands by for (`storage-target` -> storage); None for the four."""
    role = server.removesuffix(SPARE_SUFFIX)
    return role if role != server and role in SPARE_ROLES else None


def base_role(server: str) -> str:
    """What a server is built like: its role, or the role a spare stands by for."""
    return spare_role(server) or server


def server_names(spares: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """The four servers, then one spare per asked role in SPARE_ROLES order."""
    return ROLES + tuple(spare_name(role) for role in SPARE_ROLES if role in set(spares))


def server_index(server: str) -> int:
    """A server's place in the sandbox: the four by role, the spares after them (fixed, whichever
    spares exist), which gives each its fixed network and mesh address."""
    role = spare_role(server)
    return ROLES.index(server) if role is None else len(ROLES) + SPARE_ROLES.index(role)


class ServerInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: str
    container: str
    container_id: str
    state: str
    ssh_port: int | None
    address: str | None
    http_port: int | None = None
    https_port: int | None = None


class SandboxInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    state_dir: Path
    inventory: Path
    ssh_key: Path
    network: str = DEFAULT_INSTANCE
    servers: dict[str, ServerInfo]
    changed: bool = False
    """False when `up` found the sandbox already running and left it alone."""

    @property
    def usage(self) -> str:
        app = self.servers.get("app")
        port = app.ssh_port if app else FIRST_SSH_PORT
        return "\n".join(
            [
                f"Inventory: {self.inventory}",
                f"  pyinfra {self.inventory} deploys/bootstrap.py",
                f"  pyinfra {self.inventory} exec -- hostname",
                f"  ssh -i {self.ssh_key} -p {port} root@127.0.0.1",
            ]
        )

    def describe(self) -> str:
        """One line per server: role, state, SSH port and address on the sandbox network."""
        lines = [f"{'ROLE':<15} {'STATE':<10} {'SSH':<22} ADDRESS"]
        spares = [name for name in self.servers if spare_role(name)]
        for role in server_names([base_role(name) for name in spares]):
            server = self.servers.get(role)
            if server is None:
                lines.append(f"{role:<15} {'missing':<10} {'-':<22} -")
                continue
            ssh = f"127.0.0.1:{server.ssh_port}" if server.ssh_port else "-"
            lines.append(f"{role:<15} {server.state:<10} {ssh:<22} {server.address or '-'}")
        return "\n".join(lines)
