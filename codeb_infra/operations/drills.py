"""Restore drills as a pyinfra operation (an action: it runs every time it is called)."""

from __future__ import annotations

from pyinfra.api import operation

from codeb_infra.commands import backups as backup_commands
from codeb_infra.operations import Commands


@operation(is_idempotent=False)
def drill(*, root: str, pg_bin: str, scratch: str) -> Commands:
    """
    On the backup server: restore the latest base backup plus archived WAL, the latest dumps,
    RDB and AOF into scratch servers, check them and record the result (``drills/history.jsonl``);
    fails, saying what failed, when any check fails.

    + root: the backup root, e.g. ``/srv/backup``
    + pg_bin: PostgreSQL's binaries, e.g. ``/usr/lib/postgresql/15/bin``
    + scratch: where scratch servers live while the drill runs

    **Example:**

    .. code:: python

        drills.drill(root="/srv/backup", pg_bin="/usr/lib/postgresql/15/bin", scratch="/var/lib/codeb-backup/scratch")
    """
    yield backup_commands.drill(root, pg_bin, scratch)
