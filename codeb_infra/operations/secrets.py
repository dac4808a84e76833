"""Secrets generated once on the server, in root-only files; their values never leave it."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File

from codeb_infra.commands import secrets as secret_commands
from codeb_infra.config.roles import env_key
from codeb_infra.facts.secrets import EnvFileKeys
from codeb_infra.operations import Commands


def root_only(info: object) -> bool:
    """A File fact of a file that root alone may read or write (root:root 0600)."""
    return isinstance(info, dict) and (info.get("user"), info.get("group"), info.get("mode")) == ("root", "root", 600)


def _has_content(info: object) -> bool:
    return isinstance(info, dict) and int(info.get("size") or 0) > 0


@operation()
def secret(*, path: str, length: int = 40) -> Commands:
    """
    A random secret (letters and digits) in ``path``, made on the server the first time and
    kept from then on; the file is root's alone (0600).

    + path: the secret file, e.g. ``/etc/codeb/secrets/redis.password``
    + length: number of characters

    **Example:**

    .. code:: python

        secrets.secret(path="/etc/codeb/secrets/redis.password")
    """
    info = host.get_fact(File, path=path)
    if root_only(info) and _has_content(info):
        host.noop(f"{path} exists")
        return
    yield secret_commands.secrets_dir(path)
    yield secret_commands.generate(path, length)
    yield secret_commands.restrict(path)


@operation()
def env_file(*, path: str, keys: Sequence[str], length: int = 40) -> Commands:
    """
    An env file (``KEY=value`` lines, root's alone) that sets each of ``keys`` to a random value
    made on the server; keys it already sets keep their values.

    + path: the env file, e.g. ``/etc/codeb/secrets/centrifugo.env``
    + keys: variable names
    + length: number of characters of each new value

    **Example:**

    .. code:: python

        secrets.env_file(path="/etc/codeb/secrets/centrifugo.env",
            keys=["CENTRIFUGO_API_KEY", "CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"])
    """
    wanted = [env_key(key) for key in keys]
    present = host.get_fact(EnvFileKeys, path=path) or frozenset()
    missing = [key for key in wanted if key not in present]
    if not missing and root_only(host.get_fact(File, path=path)):
        host.noop(f"{path} sets {', '.join(wanted)}")
        return
    yield secret_commands.secrets_dir(path)
    for key in missing:
        yield secret_commands.add_env_value(path, key, length)
    yield secret_commands.restrict(path)
