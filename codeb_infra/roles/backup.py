"""The backup server (a `codeb-backup` account owning the backup areas) and the SSH access of the
servers that send it backups: PostgreSQL on storage, root on app.

`backup_access()` spans servers: each server's key is made on that server and then authorized on
the backup server. pyinfra orders operations per host and runs ops of different hosts by their
position in each host's list, not by the code that called them, so the key of one host is only
sure to exist before another host reads it when both steps are operations every host runs. Call
`backup_access()` on every host, from one line, after the role deploys:

    if "backup" in host.groups:
        backup()
    backup_access()
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from codeb_infra.commands import backups as backup_commands
from codeb_infra.config.roles import (
    BACKUP_HOME,
    BACKUP_SCRATCH,
    BACKUP_USER,
    BackupAccess,
    BackupSettings,
)
from codeb_infra.domain.data import BACKUP_SCHEDULES
from codeb_infra.operations import backup as backup_ops
from codeb_infra.operations import timers
from codeb_infra.roles.accounts import system_account
from codeb_infra.roles.network import internal_address
from codeb_infra.roles.tools import remote_tool

# The drills run PostgreSQL and Redis in scratch directories; no cluster or server of their own.
NO_MAIN_CLUSTER = (
    "# Written by codeb-infra: restore drills make their own scratch clusters.\ncreate_main_cluster = false\n"
)


@deploy("Bootstrap backup server")
def backup() -> None:
    settings = BackupSettings.from_data(host.data)
    apt.packages(name="SSH server and rsync", packages=["openssh-server", "rsync"], update=True, cache_time=24 * 3600)
    system_account(BACKUP_USER, home=BACKUP_HOME, shell="/bin/sh")
    files.directory(name=f"Directory {BACKUP_HOME}", path=BACKUP_HOME, user=BACKUP_USER, group=BACKUP_USER, mode="700")
    for path in (settings.backup_root, *settings.areas):
        files.directory(name=f"Directory {path}", path=path, user=BACKUP_USER, group=BACKUP_USER, mode="750")
    restore_drills(settings)


def restore_drills(settings: BackupSettings) -> None:
    """PostgreSQL and Redis binaries for scratch restores (no server of their own running), the
    codeb-backup tool, and the prune and drill timers."""
    files.put(
        name="No main PostgreSQL cluster on the backup server",
        src=StringIO(NO_MAIN_CLUSTER),
        dest="/etc/postgresql-common/createcluster.d/codeb.conf",
        mode="644",
        create_remote_dir=True,
    )
    apt.packages(
        name=f"PostgreSQL {settings.postgres_version} and Redis binaries for restore drills",
        packages=[f"postgresql-{settings.postgres_version}", "redis-server"],
    )
    systemd.service(
        name="No Redis server on the backup server", service="redis-server.service", running=False, enabled=False
    )
    files.directory(
        name=f"Directory {BACKUP_SCRATCH}", path=BACKUP_SCRATCH, user=BACKUP_USER, group=BACKUP_USER, mode="700"
    )
    remote_tool("codeb-backup", purpose="store, prune, status, drill, point-in-time restore")
    for schedule in BACKUP_SCHEDULES:
        command = backup_commands.backup_job(
            schedule.arguments[0],
            root=settings.backup_root,
            pg_bin=settings.postgres_bin,
            scratch=BACKUP_SCRATCH,
            keep_days=settings.keep_days,
            rdb_hours=settings.rdb_hours,
        )
        timers.job(name=f"Timer {schedule.name} ({schedule.on_calendar})", schedule=schedule, command=command)


@deploy("Backup access")
def backup_access(*, migration_target: str | None = None) -> None:
    """Keys on storage and app, known to and authorized on the backup server; call on every host.

    ``migration_target``: also that inventory host (`migrate_target: storage`), once it was
    bootstrapped as storage, so WAL archiving goes on from it after the move."""
    inventory = host.state.inventory

    def members(role: str) -> list[tuple[str, str | None]]:
        hosts = list(inventory.get_group(role, default=[]))
        hosts += [h for h in inventory if h.name == migration_target and h.data.get("migrate_target") == role]
        return [(h.name, internal_address(h)) for h in hosts]

    access = BackupAccess.from_groups({role: members(role) for role in ("backup", "storage", "app")})
    backup_ops.client_key(name="Backup key of this server", access=access)
    backup_ops.server_alias(name="Backup server's host key and ssh alias", access=access)
    backup_ops.authorized_clients(name="Backup clients authorized on the backup server", access=access)
