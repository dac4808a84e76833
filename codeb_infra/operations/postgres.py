"""PostgreSQL roles whose passwords live in root-only files on the storage server, databases,
and the running server's settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from io import StringIO

from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import files

from codeb_infra.commands import postgres as postgres_commands
from codeb_infra.commands import systemd as systemd_commands
from codeb_infra.config.roles import role_attributes
from codeb_infra.facts.files import TextFile
from codeb_infra.facts.postgres import (
    PostgresDatabases,
    PostgresLogin,
    PostgresSettings,
)
from codeb_infra.operations import Commands


@operation()
def login_role(*, role: str, password_file: str, attributes: Sequence[str] = ("LOGIN",), port: int = 5432) -> Commands:
    """
    A role that logs in (scram-sha-256) with the password kept in ``password_file`` on the server.

    The check is a real login over TCP on 127.0.0.1, so a role whose password drifted from the
    file is set again. The password is read on the server, never passed on a command line.

    + role: role name
    + password_file: root-only file holding the password (see ``secrets.secret``)
    + attributes: what the role may do: LOGIN, CREATEDB, CREATEROLE, SUPERUSER, REPLICATION
    + port: PostgreSQL's port

    **Example:**

    .. code:: python

        postgres.login_role(role="codeb_admin", password_file="/etc/codeb/secrets/postgres-admin.password",
            attributes=["LOGIN", "CREATEDB", "CREATEROLE"])
    """
    wanted = frozenset(role_attributes([*attributes, "LOGIN"]))
    current = host.get_fact(PostgresLogin, role=role, password_file=password_file, address="127.0.0.1", port=port)
    if current == wanted:
        host.noop(f"{role} logs in with the password in {password_file}")
        return
    yield postgres_commands.set_login_role(role=role, password_file=password_file, attributes=sorted(wanted))


@operation()
def database(*, database_name: str, owner: str, comment: str) -> Commands:
    """
    A database owned by ``owner`` that only its owner may connect to (PUBLIC's CONNECT and
    TEMPORARY revoked), marked with ``comment``.

    + database_name: database name
    + owner: owning role (must exist)
    + comment: the database's comment; ``codeb project NAME`` marks what backups cover

    **Example:**

    .. code:: python

        postgres.database(database_name="shop", owner="shop", comment="codeb project shop")
    """
    current = host.get_fact(PostgresDatabases).get(database_name)
    if current is not None and (current.owner, current.comment, current.public_connect) == (owner, comment, False):
        host.noop(f"database {database_name} belongs to {owner} alone")
        return
    yield postgres_commands.ensure_database(name=database_name, owner=owner, comment=comment)


@operation()
def server_settings(*, values: Mapping[str, str], conf_file: str, unit: str) -> Commands:
    """
    The running server has these settings (read from ``pg_settings``, so drift shows): they are
    written to ``conf_file`` (an include of postgresql.conf), values set with ``ALTER SYSTEM`` for
    them are dropped, then the configuration is reloaded, and the server restarted when one of
    them only takes effect at start (``archive_mode``, ``wal_level``).

    + values: setting -> value as ``SHOW`` prints it without unit, e.g. ``{"archive_timeout": "60"}``
    + conf_file: file included by postgresql.conf, e.g. ``/etc/postgresql/15/main/conf.d/codeb-archive.conf``
    + unit: the cluster's systemd unit, restarted when needed

    **Example:**

    .. code:: python

        postgres.server_settings(values={"wal_level": "replica", "archive_mode": "on"},
            conf_file="/etc/postgresql/15/main/conf.d/codeb-archive.conf", unit="postgresql@15-main.service")
    """
    content = "".join(f"{postgres_commands.setting_line(k, v)}\n" for k, v in values.items())
    content = "# Written by codeb-infra: WAL archiving to the backup server. Changes are undone.\n" + content
    file_current = host.get_fact(TextFile, path=conf_file) == content.rstrip("\n")
    live = host.get_fact(PostgresSettings, names=tuple(values))
    stale = [k for k, v in values.items() if k not in live or live[k].value != v or live[k].pending_restart]
    if file_current and not stale:
        host.noop(f"PostgreSQL runs with {', '.join(values)} as wanted")
        return
    if not file_current:
        yield from files.put._inner(
            src=StringIO(content), dest=conf_file, user="postgres", group="postgres", mode="644"
        )
    # Values set with ALTER SYSTEM win over the file: drop those of the stale settings first.
    yield postgres_commands.reload_config(reset=stale)
    if any(k not in live or live[k].context == "postmaster" for k in stale):
        yield systemd_commands.restart(unit)
