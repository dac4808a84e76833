"""Restore drill on the backup server: base backup + WAL, dumps, RDB and AOF restored into scratch
servers and checked; the result (with recovery point and recovery time) is recorded there.

    pyinfra inventory.py deploys/restore_drill.py      (same as: codeb backup verify)
"""

from pyinfra import host

from codeb_infra.config.roles import BACKUP_SCRATCH, BackupSettings
from codeb_infra.controller.errors import clear_errors
from codeb_infra.controller.transport import without_delay
from codeb_infra.operations import drills

without_delay(host)  # one round trip per remote command, not one delayed ACK
with clear_errors():
    if "backup" in host.groups:
        settings = BackupSettings.from_data(host.data)
        drills.drill(
            name="Restore drill", root=settings.backup_root, pg_bin=settings.postgres_bin, scratch=BACKUP_SCRATCH
        )
