"""PostgreSQL as it runs: who logs in with which password file, its databases and live settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import postgres as postgres_commands
from codeb_infra.config.roles import ROLE_ATTRIBUTES
from codeb_infra.domain.errors import CodebError


class PostgresLogin(FactBase[frozenset[str] | None]):
    """The attributes (LOGIN, CREATEDB, …) of a role that logs in over TCP with the password in
    `password_file`; None when the login is refused or PostgreSQL does not answer."""

    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "psql"

    def command(self, role: str, password_file: str, address: str = "127.0.0.1", port: int = 5432) -> StringCommand:
        return postgres_commands.role_attributes_with_password(
            role=role,
            password_file=password_file,
            address=address,
            port=port,
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


def _rows(output: list[str]) -> list[list[str]]:
    """psql -tA rows of four or more `|`-separated fields; the one free-text field is joined back."""
    return [parts for parts in (line.split("|") for line in output) if len(parts) >= 4]


@dataclass(frozen=True)
class Database:
    name: str
    owner: str
    comment: str
    public_connect: bool


class PostgresDatabases(FactBase[dict[str, Database]]):
    """The server's databases (not templates) with owner, comment and whether PUBLIC may connect."""

    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "psql"

    def command(self) -> StringCommand:
        return postgres_commands.databases()

    @staticmethod
    def default() -> dict[str, Database]:
        return {}

    def process(self, output: list[str]) -> dict[str, Database]:
        return {
            parts[0]: Database(parts[0], parts[1], "|".join(parts[2:-1]), parts[-1] == "t") for parts in _rows(output)
        }


@dataclass(frozen=True)
class Setting:
    value: str
    context: str
    pending_restart: bool


class PostgresSettings(FactBase[dict[str, Setting]]):
    """Settings of the running server (pg_settings), not of its files: drift shows here."""

    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "psql"

    def command(self, names: tuple[str, ...]) -> StringCommand:
        return postgres_commands.settings(names)

    @staticmethod
    def default() -> dict[str, Setting]:
        return {}

    def process(self, output: list[str]) -> dict[str, Setting]:
        return {parts[0]: Setting("|".join(parts[1:-2]), parts[-2], parts[-1] == "t") for parts in _rows(output)}
