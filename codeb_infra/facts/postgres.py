"""PostgreSQL as a client sees it: can this role log in with its password file, and as what."""

from __future__ import annotations

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import postgres as postgres_commands
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.services import ROLE_ATTRIBUTES


class PostgresLogin(FactBase[frozenset[str] | None]):
    """The attributes (LOGIN, CREATEDB, …) of a role that logs in over TCP with the password in
    `password_file`; None when the login is refused or PostgreSQL does not answer."""

    def requires_command(self, *args, **kwargs) -> str:
        return "psql"

    def command(self, role: str, password_file: str, address: str = "127.0.0.1", port: int = 5432) -> StringCommand:
        return postgres_commands.role_attributes_with_password(
            role=role, password_file=password_file, address=address, port=port,
        )

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> frozenset[str] | None:
        rows = [line.strip() for line in output if line.strip()]
        if not rows:
            return None
        flags = rows[-1].split("|")
        if len(flags) != len(ROLE_ATTRIBUTES) or any(f not in ("t", "f") for f in flags):
            raise CodebError(f"could not read the role's attributes from psql: {rows[-1]!r}")
        return frozenset(a for a, f in zip(ROLE_ATTRIBUTES, flags, strict=True) if f == "t")
