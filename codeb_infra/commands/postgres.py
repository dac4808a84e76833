"""psql command lines. Passwords stay on the server: they are read from their file inside the
remote shell into an environment variable, and psql takes them from there (`\\getenv`)."""

from __future__ import annotations

from collections.abc import Iterable

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted
from codeb_infra.config.roles import (
    ROLE_ATTRIBUTES,
    ip_address,
    role_attributes,
    role_name,
)

# pg_roles columns in ROLE_ATTRIBUTES order.
ATTRIBUTE_COLUMNS = ("rolcanlogin", "rolcreatedb", "rolcreaterole", "rolsuper", "rolreplication")
PASSWORD_VARIABLE = "CODEB_PGPASSWORD"


def _password_from(path: str) -> StringCommand:
    return command(f'{PASSWORD_VARIABLE}="$(cat', quoted(path), ')"')


def role_attributes_with_password(*, role: str, password_file: str, address: str, port: int) -> StringCommand:
    """Log in as `role` over TCP with the password in `password_file`; print its attributes
    (`t|f|…` in ROLE_ATTRIBUTES order), or nothing when the login is refused."""
    query = f"SELECT {', '.join(ATTRIBUTE_COLUMNS)} FROM pg_roles WHERE rolname = current_user"
    return command(
        "[",
        "-s",
        quoted(password_file),
        "]",
        "&&",
        'PGPASSWORD="$(cat',
        quoted(password_file),
        ')"',
        "PGCONNECT_TIMEOUT=5",
        "psql",
        "-X",
        "-w",
        "-q",
        "-tA",
        "-h",
        quoted(ip_address(address)),
        "-p",
        str(int(port)),
        "-U",
        quoted(role_name(role)),
        "-d",
        "postgres",
        "-c",
        quoted(query),
        "2>/dev/null",
        "||",
        "true",
    )


def set_login_role(*, role: str, password_file: str, attributes: Iterable[str]) -> StringCommand:
    """Create `role` if missing and give it these attributes and the password in `password_file`.

    The statement that carries the password is neither logged by the server (log settings off for
    this session) nor echoed back by psql on error (terse errors)."""
    name = role_name(role)
    wanted = role_attributes(attributes)
    flags = " ".join(a if a in wanted else f"NO{a}" for a in ROLE_ATTRIBUTES)
    script = (
        r"\set VERBOSITY terse",
        r"\set SHOW_CONTEXT never",
        rf"\getenv password {PASSWORD_VARIABLE}",
        "SET log_statement = 'none';",
        "SET log_min_error_statement = 'panic';",
        "SET log_min_duration_statement = -1;",
        f"SELECT 'CREATE ROLE {name}' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}')\\gexec",
        f"ALTER ROLE {name} WITH {flags} PASSWORD :'password';",
    )
    return command(
        "[",
        "-s",
        quoted(password_file),
        "]",
        "&&",
        "printf",
        quoted("%s\\n"),
        *(quoted(line) for line in script),
        "|",
        _password_from(password_file),
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        "postgres",
    )


def _as_postgres(sql: str) -> StringCommand:
    """psql as the postgres superuser over the local socket (peer authentication), one query."""
    return command(
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-X",
        "-q",
        "-tA",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        "postgres",
        "-c",
        quoted(sql),
    )


def databases() -> StringCommand:
    """`name|owner|comment|public may connect` for each database that is not a template."""
    return _as_postgres(
        "SELECT d.datname, pg_get_userbyid(d.datdba), coalesce(shobj_description(d.oid, 'pg_database'), ''), "
        "has_database_privilege('public', d.oid, 'CONNECT') FROM pg_database d WHERE NOT d.datistemplate ORDER BY 1"
    )


def ensure_database(*, name: str, owner: str, comment: str) -> StringCommand:
    """Create the database if missing, owned by `owner`, with `comment`, and connectable by its
    owner alone (PUBLIC's CONNECT and TEMPORARY revoked)."""
    database, role = role_name(name), role_name(owner)
    if "'" in comment or "\\" in comment:
        raise ValueError(f"refusing comment {comment!r}")
    script = (
        f"SELECT 'CREATE DATABASE {database} OWNER {role}' "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')\\gexec",
        f"ALTER DATABASE {database} OWNER TO {role};",
        f"COMMENT ON DATABASE {database} IS '{comment}';",
        f"REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC;",
    )
    return command(
        "printf",
        quoted("%s\\n"),
        *(quoted(line) for line in script),
        "|",
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        "postgres",
    )


def settings(names: Iterable[str]) -> StringCommand:
    """`name|setting|context|pending_restart` from pg_settings, as the running server has them."""
    wanted = [role_name(n) for n in names]
    listed = ", ".join(f"'{n}'" for n in wanted)
    return command(
        _as_postgres(f"SELECT name, setting, context, pending_restart FROM pg_settings WHERE name IN ({listed})"),
        "2>/dev/null",
        "||",
        "true",
    )


def reload_config(reset: Iterable[str] = ()) -> StringCommand:
    """Reload the configuration, first dropping `ALTER SYSTEM` values of `reset` (they would
    override the files). One `-c` per statement: ALTER SYSTEM cannot run in a transaction."""
    statements = [f"ALTER SYSTEM RESET {role_name(n)}" for n in reset] + ["SELECT pg_reload_conf()"]
    return command(
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-X",
        "-q",
        "-tA",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        "postgres",
        *(part for statement in statements for part in ("-c", quoted(statement))),
    )


def setting_line(name: str, value: str) -> str:
    """`name = 'value'` for postgresql.conf."""
    return f"{role_name(name)} = '{value.replace(chr(39), chr(39) * 2)}'"
