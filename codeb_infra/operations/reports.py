"""SSH access of the API's report key: the key made on the app server, the report servers' host
keys known to it, and the key authorized on streaming, storage and backup for codeb-report alone.

The operations read other hosts' facts, so they run as steps shared by every host (see
``codeb_infra.roles.reports``), the key's before the one that authorizes it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from io import StringIO

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import File
from pyinfra.operations import files

from codeb_infra.commands import ssh as ssh_commands
from codeb_infra.config.roles import (
    API_KNOWN_HOSTS,
    API_REPORT_KEY,
    REPORT_KEY_COMMENT,
    known_hosts_line,
    report_key_line,
    with_report_key,
)
from codeb_infra.facts.files import TextFile
from codeb_infra.facts.ssh import SshPublicKey
from codeb_infra.operations import Commands
from codeb_infra.operations.backup import HOST_KEY, _inventory_host

AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"


@operation()
def api_key(*, app: str) -> Commands:
    """
    On the app server: the API's report key (root's, 0600, as the API runs as root), made on the
    server itself. Nothing to do on other servers.

    + app: the app server's inventory name

    **Example:**

    .. code:: python

        reports.api_key(app="app")
    """
    if host.name != app:
        host.noop("not the app server")
        return
    private = host.get_fact(File, path=API_REPORT_KEY)
    public = host.get_fact(SshPublicKey, path=f"{API_REPORT_KEY}.pub")
    if private and public:
        host.noop(f"{API_REPORT_KEY} exists")
        return
    yield from files.directory._inner(path=posixpath.dirname(API_REPORT_KEY), user="root", group="root", mode="700")
    if not private:
        yield ssh_commands.keygen(user="root", path=API_REPORT_KEY, comment=REPORT_KEY_COMMENT)
    else:
        yield ssh_commands.public_from_private(user="root", path=API_REPORT_KEY)


@operation()
def known_servers(*, app: str, servers: Sequence[tuple[str, str]]) -> Commands:
    """
    On the app server: the API's own known_hosts, holding each report server's host key (read
    from the server itself) under its name and address. Nothing to do on other servers.

    + app: the app server's inventory name
    + servers: (inventory name, address the API reaches it at) of each report server

    **Example:**

    .. code:: python

        reports.known_servers(app="app", servers=[("storage", "10.77.0.4")])
    """
    if host.name != app:
        host.noop("not the app server")
        return
    lines = []
    for server, address in servers:
        key = _inventory_host(server).get_fact(SshPublicKey, path=HOST_KEY)
        if key is None:
            raise OperationError(f"{server} has no SSH host key at {HOST_KEY}")
        lines.append(known_hosts_line([server, address], key))
    yield from files.put._inner(
        src=StringIO("".join(f"{line}\n" for line in lines)),
        dest=API_KNOWN_HOSTS,
        user="root",
        group="root",
        mode="600",
    )


@operation()
def authorized_api(*, app: str, address: str | None, servers: Sequence[str]) -> Commands:
    """
    On a report server: root's ``authorized_keys`` holds the API's report key, usable only from the
    app server's address and only to run codeb-report (``restrict``, a forced command); every other
    line of the file is kept. Without an app server the line is removed. Nothing to do on other
    servers.

    + app: the app server's inventory name
    + address: where the app server connects from (its internal address)
    + servers: the report servers' inventory names

    **Example:**

    .. code:: python

        reports.authorized_api(app="app", address="10.77.0.2", servers=["storage", "backup"])
    """
    if host.name not in servers:
        host.noop("not a report server")
        return
    line = None
    if app and address:
        key = _inventory_host(app).get_fact(SshPublicKey, path=f"{API_REPORT_KEY}.pub")
        if key is None and host.state.is_executing:
            raise OperationError(f"no report key on {app} at {API_REPORT_KEY}.pub; run reports.api_key there first")
        line = report_key_line(key, address) if key else None
    current = host.get_fact(TextFile, path=AUTHORIZED_KEYS)
    if current is None and line is None:
        host.noop("no report key to authorize")
        return
    # files.put compares checksums: the same lines again change nothing.
    yield from files.directory._inner(path=posixpath.dirname(AUTHORIZED_KEYS), user="root", group="root", mode="700")
    yield from files.put._inner(
        src=StringIO(with_report_key(current, line)), dest=AUTHORIZED_KEYS, user="root", group="root", mode="600"
    )
