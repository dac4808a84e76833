"""Redis's access list, derived on the server from root-only password files, and its live
persistence settings."""

from __future__ import annotations

from collections.abc import Mapping

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File

from codeb_infra.commands import redis as redis_commands
from codeb_infra.facts.redis import RedisAclCurrent, RedisConfig
from codeb_infra.operations import Commands


@operation()
def acl(*, path: str, password_file: str, users_dir: str, group: str = "redis", reload: bool = False) -> Commands:
    """
    Redis's ACL file (``aclfile``): the default user with the password in ``password_file``, and
    for each ``{users_dir}/{user}.password`` a user limited to keys and channels ``{user}:*``
    without admin or dangerous commands. It holds password hashes only, so Redis may read it
    (root:redis, 0640) while the password files stay root's alone.

    + path: the ACL file, e.g. ``/etc/redis/codeb-acl.conf``
    + password_file: root-only file holding the default user's password
    + users_dir: directory of the project users' password files
    + group: the group Redis runs as
    + reload: make the running Redis load the new file (``ACL LOAD``), no restart

    **Example:**

    .. code:: python

        redis.acl(path="/etc/redis/codeb-acl.conf", password_file="/etc/codeb/secrets/redis.password",
            users_dir="/etc/codeb/secrets/redis-users", reload=True)
    """
    info = host.get_fact(File, path=path)
    owned = isinstance(info, dict) and (info.get("user"), info.get("group"), info.get("mode")) == ("root", group, 640)
    if owned and host.get_fact(RedisAclCurrent, path=path, password_file=password_file, users_dir=users_dir):
        host.noop(f"{path} grants the passwords in {password_file} and {users_dir}")
        return
    yield redis_commands.write_acl(path=path, password_file=password_file, users_dir=users_dir, group=group)
    if reload:
        yield redis_commands.acl_load(password_file)


@operation()
def runtime_config(*, values: Mapping[str, str], password_file: str) -> Commands:
    """
    The running Redis has these settings (read with ``CONFIG GET``, set with ``CONFIG SET``):
    drift made at runtime is seen and undone. The config file should hold the same values so a
    restart keeps them.

    + values: parameter -> value, e.g. ``{"appendonly": "yes", "appendfsync": "everysec"}``
    + password_file: root-only file with the default user's password

    **Example:**

    .. code:: python

        redis.runtime_config(values={"appendonly": "yes", "appendfsync": "everysec"},
            password_file="/etc/codeb/secrets/redis.password")
    """
    live = host.get_fact(RedisConfig, password_file=password_file, parameters=tuple(values))
    stale = {key: value for key, value in values.items() if live.get(key) != value}
    if not stale:
        host.noop(f"Redis runs with {', '.join(f'{k} {v}' for k, v in values.items())}")
        return
    yield redis_commands.config_set(password_file, stale)
