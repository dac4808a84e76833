"""What the server's secret files hold, by name only: no fact here ever reads a secret's value."""

from __future__ import annotations

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import secrets as secret_commands


class EnvFileKeys(FactBase[frozenset[str] | None]):
    """The variable names an env file sets (None when the file does not exist)."""

    def command(self, path: str) -> StringCommand:
        return secret_commands.env_keys(path)

    def process(self, output: list[str]) -> frozenset[str] | None:
        if output == [secret_commands.ENV_MISSING]:
            return None
        return frozenset(line.strip() for line in output if line.strip())
