"""Whether Redis's ACL file matches the password file (compared on the server, by hash)."""

from __future__ import annotations

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import redis as redis_commands


class RedisAclCurrent(FactBase[bool]):
    """True when the ACL file grants exactly the password in `password_file`."""

    def command(self, path: str, password_file: str) -> StringCommand:
        return redis_commands.acl_current(path=path, password_file=password_file)

    @staticmethod
    def default() -> bool:
        return False

    def process(self, output: list[str]) -> bool:
        return bool(output) and output[-1].strip() == "current"
