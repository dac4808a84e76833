"""What a sandbox is: four servers with fixed names and labels, and what `up` and `status`
report about them."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.errors import CodebError

ROLES: tuple[str, ...] = ("app", "streaming", "storage", "backup")
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
    return f"{instance()}-{role}"


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
        lines = [f"{'ROLE':<10} {'STATE':<10} {'SSH':<22} ADDRESS"]
        for role in ROLES:
            server = self.servers.get(role)
            if server is None:
                lines.append(f"{role:<10} {'missing':<10} {'-':<22} -")
                continue
            ssh = f"127.0.0.1:{server.ssh_port}" if server.ssh_port else "-"
            lines.append(f"{role:<10} {server.state:<10} {ssh:<22} {server.address or '-'}")
        return "\n".join(lines)
