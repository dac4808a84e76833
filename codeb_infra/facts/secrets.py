"""What the server's secret files hold, by name only: no fact here ever reads a secret's value."""

from __future__ import annotations

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import master_env
from codeb_infra.commands import secrets as secret_commands
from codeb_infra.domain.data import ProjectData


class EnvFileKeys(FactBase[frozenset[str] | None]):
    """The variable names an env file sets (None when the file does not exist)."""

    def command(self, path: str) -> StringCommand:
        return secret_commands.env_keys(path)

    def process(self, output: list[str]) -> frozenset[str] | None:
        if output == [secret_commands.ENV_MISSING]:
            return None
        return frozenset(line.strip() for line in output if line.strip())


class MasterEnvCurrent(FactBase[bool]):
    """True when a project's master env on the storage server holds exactly what its password
    files and the server's address make (compared on the server; nothing is printed)."""

    def command(self, project: str, address: str, postgres_port: int = 5432, redis_port: int = 6379) -> StringCommand:
        return master_env.current(ProjectData.of(project), address, postgres_port, redis_port)

    @staticmethod
    def default() -> bool:
        return False

    def process(self, output: list[str]) -> bool:
        return bool(output) and output[-1].strip() == "current"
