"""SSH access to the backup server: keys made on the servers that send backups, authorized on the
backup server for one account, from their private addresses only.

The three operations read other hosts' facts, so they run as steps shared by every host: call
them on all hosts, from one place, after the role deploys (see ``codeb_infra.roles.backup``).
"""

from __future__ import annotations

import posixpath
from io import StringIO

from pyinfra import host
from pyinfra.api import Host, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import File
from pyinfra.operations import files

from codeb_infra.commands import ssh as ssh_commands
from codeb_infra.config.roles import (
    BACKUP_HOME,
    BACKUP_SSH_ALIAS,
    BACKUP_USER,
    BackupAccess,
    authorized_key_line,
    known_hosts_line,
)
from codeb_infra.facts.ssh import SshPublicKey
from codeb_infra.operations import Commands
from codeb_infra.templates import render

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"
KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
SSH_CONFIG = f"/etc/ssh/ssh_config.d/{BACKUP_SSH_ALIAS}.conf"


def _inventory_host(name: str) -> Host:
    found = host.state.inventory.get_host(name, default=None)
    if found is None:
        raise OperationError(f"{name} is not in the inventory")
    return found


@operation()
def client_key(*, access: BackupAccess) -> Commands:
    """
    On a server that sends backups: its account's SSH key for the backup server, made on the
    server itself (the private key never leaves it). Nothing to do on other servers.

    + access: who sends backups to whom (``BackupAccess.from_groups``)

    **Example:**

    .. code:: python

        backup.client_key(access=access)
    """
    client = access.client(host.name)
    if client is None:
        host.noop("not a backup client")
        return
    private = host.get_fact(File, path=client.key)
    public = host.get_fact(SshPublicKey, path=f"{client.key}.pub")
    if private and public:
        host.noop(f"{client.key} exists")
        return
    yield from files.directory._inner(path=posixpath.dirname(client.key), user=client.user, mode="700")
    if not private:
        yield ssh_commands.keygen(user=client.user, path=client.key, comment=client.comment)
    else:
        yield ssh_commands.public_from_private(user=client.user, path=client.key)


@operation()
def server_alias(*, access: BackupAccess) -> Commands:
    """
    On a server that sends backups: the backup server's host key (read from the backup server
    itself) in the system's known hosts, and an ``ssh codeb-backup`` alias that logs in as the
    backup account with the backup key. Nothing to do on other servers.

    + access: who sends backups to whom

    **Example:**

    .. code:: python

        backup.server_alias(access=access)
    """
    client = access.client(host.name)
    if client is None or access.server is None:
        host.noop("not a backup client")
        return
    server = access.server
    host_key = _inventory_host(server.host).get_fact(SshPublicKey, path=HOST_KEY)
    if host_key is None:
        raise OperationError(f"{server.host} has no SSH host key at {HOST_KEY}")
    yield from files.block._inner(
        path=KNOWN_HOSTS,
        content=known_hosts_line([server.host, server.address], host_key),
        marker="# {mark} codeb backup server",
    )
    # files.block writes a new file 0600; every account's ssh reads this one.
    yield from files.file._inner(path=KNOWN_HOSTS, user="root", group="root", mode="644")
    config = render(
        "ssh_backup_alias.conf.j2",
        alias=BACKUP_SSH_ALIAS,
        address=server.address,
        user=BACKUP_USER,
        key=f"~/.ssh/{posixpath.basename(client.key)}",
    )
    yield from files.put._inner(src=StringIO(config), dest=SSH_CONFIG, user="root", group="root", mode="644")


@operation()
def authorized_clients(*, access: BackupAccess) -> Commands:
    """
    On the backup server: the backup account's ``authorized_keys`` holds exactly the clients'
    keys, each usable only from its client's private address, without a terminal or forwarding.
    The keys are read from the clients when this runs, so their ``client_key`` must run first.
    Nothing to do on other servers.

    + access: who sends backups to whom

    **Example:**

    .. code:: python

        backup.authorized_clients(access=access)
    """
    if not access.is_server(host.name):
        host.noop("not the backup server")
        return
    lines, pending = [], []
    for client in access.clients:
        key = _inventory_host(client.host).get_fact(SshPublicKey, path=f"{client.key}.pub")
        if key is None:
            pending.append(client.host)
            continue
        lines.append(authorized_key_line(key, [client.address]))
    if pending and host.state.is_executing:
        raise OperationError(
            f"no backup key on {', '.join(pending)} at {access.clients[0].key}.pub; "
            "run backup.client_key there first (deploys/bootstrap.py does)"
        )
    ssh_dir = posixpath.join(BACKUP_HOME, ".ssh")
    yield from files.directory._inner(path=ssh_dir, user=BACKUP_USER, group=BACKUP_USER, mode="700")
    yield from files.put._inner(
        src=StringIO("".join(f"{line}\n" for line in lines)),
        dest=posixpath.join(ssh_dir, "authorized_keys"),
        user=BACKUP_USER,
        group=BACKUP_USER,
        mode="600",
        # Keys still to be made on a client: this will change, whatever the file holds now.
        force=bool(pending),
    )
