"""What the backup tools report: archiving and persistence on the storage server, and the backups
held on the backup server (newest base backup, WAL, dumps, snapshots, last drill)."""

from __future__ import annotations

import json
from typing import Any

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import backups as backup_commands


def _json(output: list[str]) -> dict[str, Any] | None:
    text = "\n".join(output).strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class StorageBackupStatus(FactBase[dict[str, Any] | None]):
    """`codeb-storage status`: pg_stat_archiver, WAL waiting to be archived, live archive settings,
    Redis persistence."""

    def command(self) -> StringCommand:
        return backup_commands.storage_status()

    def process(self, output: list[str]) -> dict[str, Any] | None:
        return _json(output)


class BackupStoreStatus(FactBase[dict[str, Any] | None]):
    """`codeb-backup status`: what the backup server holds, and the last drill."""

    def command(self, root: str) -> StringCommand:
        return backup_commands.store_status(root)

    def process(self, output: list[str]) -> dict[str, Any] | None:
        return _json(output)
