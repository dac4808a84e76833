"""The storage server: PostgreSQL and Redis, listening on loopback and the private address only,
each behind a password made on the server and kept in a root-only file under /etc/codeb/secrets;
WAL archived to the backup server as it is written, base backups, daily dumps and hourly Redis
snapshots shipped there by systemd timers."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from codeb_infra.commands import backups as backup_commands
from codeb_infra.commands.replication import REPLICATION_PASSWORD, REPLICATION_ROLE
from codeb_infra.config.roles import (
    POSTGRES_ADMIN_PASSWORD,
    REDIS_ACL,
    REDIS_CONFIG,
    REDIS_PASSWORD,
    StorageSettings,
)
from codeb_infra.domain.data import (
    POSTGRES_PASSWORDS_DIR,
    REDIS_USERS_DIR,
    STORAGE_SCHEDULES,
)
from codeb_infra.domain.migrate import TARGET_KEY
from codeb_infra.operations import postgres, redis, secrets, timers
from codeb_infra.roles.network import internal_address, internal_data, peer_addresses
from codeb_infra.roles.tools import remote_tool
from codeb_infra.templates import render

REDIS_PERSISTENCE = {"appendonly": "yes", "appendfsync": "everysec"}

# What the shared admin role may do: make each project's database and owner, nothing more.
ADMIN_ATTRIBUTES = ("LOGIN", "CREATEDB", "CREATEROLE")


@deploy("Bootstrap storage server")
def storage() -> None:
    settings = StorageSettings.from_data(internal_data(host))
    peers = peer_addresses(host)
    networks = settings.client_networks(a for a in peers if a)
    version = settings.postgres_version
    # A host the inventory marks as this role's migration target may stream a base backup and WAL.
    replicas = [
        a for a in (internal_address(h) for h in host.state.inventory if h.data.get(TARGET_KEY) == "storage") if a
    ]

    apt.packages(
        name=f"PostgreSQL {version}, Redis and the SSH client",
        packages=[f"postgresql-{version}", "redis-server", "openssh-client"],
        update=True,
        cache_time=24 * 3600,
    )
    secrets.secret(name="PostgreSQL admin password", path=POSTGRES_ADMIN_PASSWORD)
    secrets.secret(name="Redis password", path=REDIS_PASSWORD)

    listen = files.put(
        name="PostgreSQL listens on loopback and the private address",
        src=StringIO(render("postgresql.codeb.conf.j2", private_address=settings.private_address)),
        dest=f"{settings.postgres_dir}/conf.d/codeb.conf",
        user="postgres",
        group="postgres",
        mode="644",
    )
    hba = files.put(
        name="PostgreSQL lets the private network in by password (scram-sha-256)",
        src=StringIO(render("pg_hba.conf.j2", networks=networks, replication_from=replicas)),
        dest=f"{settings.postgres_dir}/pg_hba.conf",
        user="postgres",
        group="postgres",
        mode="640",
    )
    systemd.service(name="PostgreSQL clusters start at boot", service="postgresql.service", running=True, enabled=True)
    systemd.service(
        name=f"PostgreSQL {version} running",
        service=settings.postgres_unit,
        running=True,
        restarted=listen.will_change,
        reloaded=hba.will_change and not listen.will_change,
    )
    postgres.login_role(
        name=f"PostgreSQL role {settings.postgres_admin_role} with the admin password",
        role=settings.postgres_admin_role,
        password_file=POSTGRES_ADMIN_PASSWORD,
        attributes=ADMIN_ATTRIBUTES,
    )
    if replicas:
        secrets.secret(name="PostgreSQL replication password", path=REPLICATION_PASSWORD)
        postgres.login_role(
            name=f"PostgreSQL role {REPLICATION_ROLE} for the migration target",
            role=REPLICATION_ROLE,
            password_file=REPLICATION_PASSWORD,
            attributes=["LOGIN", "REPLICATION"],
        )

    for directory in (POSTGRES_PASSWORDS_DIR, REDIS_USERS_DIR):
        files.directory(name=f"Directory {directory}", path=directory, user="root", group="root", mode="700")
    acl = redis.acl(
        name="Redis ACL from the Redis password and the project users'",
        path=REDIS_ACL,
        password_file=REDIS_PASSWORD,
        users_dir=REDIS_USERS_DIR,
    )
    config = files.put(
        name="Redis listens on loopback and the private address",
        src=StringIO(render("redis.codeb.conf.j2", private_address=settings.private_address, acl_file=REDIS_ACL)),
        dest=REDIS_CONFIG,
        user="root",
        group="redis",
        mode="640",
    )
    include = files.line(
        name="redis.conf includes codeb.conf", path="/etc/redis/redis.conf", line=f"include {REDIS_CONFIG}"
    )
    systemd.service(
        name="Redis running",
        service="redis-server.service",
        running=True,
        enabled=True,
        restarted=acl.will_change or config.will_change or include.will_change,
    )
    backups(settings)


def backups(settings: StorageSettings) -> None:
    """WAL archiving (live settings checked), Redis persistence, and the backup timers."""
    remote_tool("codeb-storage", purpose="archive, base backup, dump, snapshot")
    postgres.server_settings(
        name="PostgreSQL archives each WAL segment to the backup server",
        values={
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": backup_commands.archive_command(),
            "archive_timeout": str(settings.archive_timeout),
        },
        conf_file=f"{settings.postgres_dir}/conf.d/codeb-archive.conf",
        unit=settings.postgres_unit,
    )
    redis.runtime_config(
        name="Redis appends every write, fsync each second", values=REDIS_PERSISTENCE, password_file=REDIS_PASSWORD
    )
    for schedule in STORAGE_SCHEDULES:
        timers.job(
            name=f"Timer {schedule.name} ({schedule.on_calendar})",
            schedule=schedule,
            command=backup_commands.storage_job(schedule.arguments),
            after=settings.postgres_unit,
        )
