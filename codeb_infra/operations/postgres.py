"""PostgreSQL roles whose passwords live in root-only files on the storage server."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import operation

from codeb_infra.commands import postgres as postgres_commands
from codeb_infra.domain.services import role_attributes
from codeb_infra.facts.postgres import PostgresLogin


@operation()
def login_role(*, role: str, password_file: str, attributes: Sequence[str] = ("LOGIN",), port: int = 5432):
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
