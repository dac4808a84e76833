"""Redis's access list, derived on the server from a root-only password file."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File

from codeb_infra.commands import redis as redis_commands
from codeb_infra.facts.redis import RedisAclCurrent


@operation()
def password_acl(*, path: str, password_file: str, group: str = "redis"):
    """
    An ACL file, included from redis.conf, that lets the default user in only with the password
    in ``password_file``. It holds the password's SHA-256, never the password, so Redis may read
    it (root:redis, 0640) while the password file stays root's alone.

    + path: the ACL file, e.g. ``/etc/redis/codeb-acl.conf``
    + password_file: root-only file holding the password
    + group: the group Redis runs as

    **Example:**

    .. code:: python

        redis.password_acl(path="/etc/redis/codeb-acl.conf", password_file="/etc/codeb/secrets/redis.password")
    """
    info = host.get_fact(File, path=path)
    owned = isinstance(info, dict) and (info.get("user"), info.get("group"), info.get("mode")) == ("root", group, 640)
    if owned and host.get_fact(RedisAclCurrent, path=path, password_file=password_file):
        host.noop(f"{path} grants the password in {password_file}")
        return
    yield redis_commands.write_acl(path=path, password_file=password_file, group=group)
