"""Idempotent pieces of monitoring that pyinfra's own operations do not cover: the PostgreSQL role
the exporter logs in with, and the Redis exporter's secret-holding environment file."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from codeb_infra.commands import monitoring as monitoring_commands
from codeb_infra.facts.health import PostgresMonitorRole, RedisExporterEnv
from codeb_infra.operations import Commands


@operation()
def postgres_monitor_role() -> Commands:
    """
    The `prometheus` login role, a member of pg_monitor (peer authentication on the socket).

    **Example:**

    .. code:: python

        monitoring.postgres_monitor_role()
    """
    if host.get_fact(PostgresMonitorRole):
        host.noop("the prometheus role exists and is in pg_monitor")
        return
    yield monitoring_commands.monitor_role()


@operation()
def redis_exporter_env(*, path: str, args: str, password_file: str) -> Commands:
    """
    The Redis exporter's environment file (ARGS and REDIS_PASSWORD), 0600, composed on the server.

    + path: the environment file, e.g. ``/etc/default/prometheus-redis-exporter``
    + args: the exporter's arguments
    + password_file: root-only file holding the Redis password

    **Example:**

    .. code:: python

        monitoring.redis_exporter_env(path="/etc/default/prometheus-redis-exporter",
            args="-web.listen-address 10.0.0.4:9121", password_file="/etc/codeb/secrets/redis.password")
    """
    if host.get_fact(RedisExporterEnv, path=path, args=args, password_file=password_file):
        host.noop(f"{path} is up to date")
        return
    yield monitoring_commands.redis_env(path, args, password_file)
