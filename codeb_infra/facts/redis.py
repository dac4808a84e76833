"""Redis as it runs: whether its ACL file matches the password files (compared on the server, by
hash), and its live configuration (CONFIG GET), so drift from the config file shows."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import redis as redis_commands


class RedisAclCurrent(FactBase[bool]):
    """True when the ACL file grants exactly the default password and each project user's."""

    def command(self, path: str, password_file: str, users_dir: str) -> StringCommand:
        return redis_commands.acl_current(path=path, password_file=password_file, users_dir=users_dir)

    @staticmethod
    def default() -> bool:
        return False

    def process(self, output: list[str]) -> bool:
        return bool(output) and output[-1].strip() == "current"


class RedisConfig(FactBase[dict[str, str]]):
    """`CONFIG GET` of the running Redis for these parameters; empty when it does not answer."""

    def command(self, password_file: str, parameters: Sequence[str]) -> StringCommand:
        return redis_commands.config_get(password_file, parameters)

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def process(self, output: list[str]) -> dict[str, str]:
        lines = [line.rstrip("\r") for line in output]
        if len(lines) % 2:
            return {}
        return dict(zip(lines[::2], lines[1::2], strict=True))
