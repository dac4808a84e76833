"""Command lines of monitoring: the PostgreSQL role of the exporter, the Redis exporter's
environment file (composed on the server from the root-only password file, so the password is
on no command line), and codeb's metrics job."""

from __future__ import annotations

import shlex
from typing import TypedDict

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted, safe
from codeb_infra.commands.health import HEALTH_TOOL

MONITOR_ROLE = "prometheus"
_ROLE_SQL = (
    f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{MONITOR_ROLE}') THEN "
    f"CREATE ROLE {MONITOR_ROLE} LOGIN; END IF; END$$; GRANT pg_monitor TO {MONITOR_ROLE};"
)
_ROLE_CHECK = (
    "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid "
    f"WHERE r.rolname = '{MONITOR_ROLE}' AND r.rolcanlogin AND g.rolname = 'pg_monitor'"
)


def _psql(sql: str) -> StringCommand:
    return command("runuser", "-u", "postgres", "--", "psql", "-XAtq", "-c", quoted(sql))


def monitor_role_present() -> StringCommand:
    """Prints 1 when the role is there, 0 otherwise, also before PostgreSQL is installed (a first
    bootstrap through pyinfra's API reads this while the install is still to come)."""
    return command(_psql(_ROLE_CHECK), "2>/dev/null", "||", "echo", "0")


def monitor_role() -> StringCommand:
    return _psql(_ROLE_SQL)


def _redis_env(args: str, password_file: str) -> str:
    """Shell that prints the Redis exporter's environment file; the password is read by `cat`
    inside the remote shell, never passed as an argument."""
    return (
        f"printf 'ARGS=%s\\n' {shlex.quote(shlex.quote(args))}; "
        f"printf 'REDIS_PASSWORD=%s\\n' \"$(cat {shlex.quote(safe(password_file))})\""
    )


def redis_env_current(path: str, args: str, password_file: str) -> StringCommand:
    """`same` when the file at `path` holds what it should, else `differs`."""
    return command(
        f"if {{ {_redis_env(args, password_file)}; }} | cmp -s - {shlex.quote(safe(path))}; "
        "then echo same; else echo differs; fi"
    )


def redis_env(path: str, args: str, password_file: str) -> StringCommand:
    target = shlex.quote(safe(path))
    return command(f"umask 077 && {{ {_redis_env(args, password_file)}; }} > {target}.new && mv {target}.new {target}")


class MetricsJob(TypedDict, total=False):
    """What a server's codeb-metrics job checks besides its own units: ``metrics_job``'s options."""

    registry: str
    storage_tool: str
    backup_tool: str
    backup_root: str
    ca: tuple[str, ...]


def metrics_job(
    out: str,
    *,
    registry: str = "",
    storage_tool: str = "",
    backup_tool: str = "",
    backup_root: str = "",
    ca: tuple[str, ...] = (),
) -> str:
    """The ExecStart line of codeb-metrics.service (a systemd unit line, so plain words only)."""
    given = [
        ("--out", out),
        ("--registry", registry),
        ("--storage-tool", storage_tool),
        ("--backup-tool", backup_tool),
        ("--backup-root", backup_root),
        *(("--ca", path) for path in ca),
    ]
    for _, value in given:
        if value and (any(c.isspace() or c in "'\"$%;\\" for c in safe(value))):
            raise ValueError(f"refusing {value!r} in a unit's command line")
    return " ".join(
        ["/usr/bin/python3", HEALTH_TOOL, "metrics", *(p for option, value in given if value for p in (option, value))]
    )
