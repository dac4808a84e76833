"""Backups as a person asks about them: how fresh each kind is, run a restore drill, restore a
database to a point in time, take a backup now. Reads facts and runs the tools on the storage and
backup servers; verdicts come from `domain.data`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyinfra import host
from pyinfra.api import StringCommand

from codeb_infra.commands import backups as backup_commands
from codeb_infra.config.roles import BACKUP_SCRATCH, BackupSettings, StorageSettings
from codeb_infra.controller import runner
from codeb_infra.domain import data
from codeb_infra.domain.errors import CodebError
from codeb_infra.facts.backups import BackupStoreStatus, StorageBackupStatus
from codeb_infra.facts.postgres import Database, PostgresDatabases
from codeb_infra.flows import reports


@dataclass(frozen=True)
class Report:
    checks: list[data.Check]
    store: dict[str, Any] = field(default_factory=dict)
    """What the backup server said it holds (base, wal, dumps, rdb, aof, drills), as it said it."""

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks], "store": self.store}


def storage_found(status: dict[str, Any] | None, databases: dict[str, Database], host_data: Any) -> dict[str, Any]:
    """What `checks` is given of the storage server, from its StorageBackupStatus and PostgresDatabases."""
    projects = sorted(d.name for d in databases.values() if d.comment.startswith("codeb project "))
    return {
        "status": status,
        "databases": projects,
        "archive_timeout": StorageSettings.from_data(host_data).archive_timeout,
    }


def _storage() -> dict[str, Any]:
    return storage_found(host.get_fact(StorageBackupStatus), host.get_fact(PostgresDatabases), host.data)


def _store() -> dict[str, Any] | None:
    return host.get_fact(BackupStoreStatus, root=BackupSettings.from_data(host.data).backup_root)


def from_reports(remote: reports.RemoteRead) -> dict[str, Any]:
    """What READERS would have found on a server read through its reports instead."""
    found: dict[str, Any] = {}
    if "storage" in remote.roles:
        found["storage"] = storage_found(
            remote.parsed("storage", StorageBackupStatus), remote.parsed("databases", PostgresDatabases), remote.data
        )
    if "backup" in remote.roles:
        found["backup"] = remote.parsed("backup", BackupStoreStatus)
    return found


def _remote() -> dict[str, Any]:
    """On the API's app server: what READERS find on the servers it reads through reports."""
    found: dict[str, Any] = {}
    for remote in reports.read_remote():
        for group, value in ({} if remote.error else from_reports(remote)).items():
            found.setdefault(group, value)
    return found


READERS = {"storage": _storage, "backup": _store}
"""What each group's first host is asked (also by `codeb health`, which reads every server)."""


def checks(found: dict[str, Any], now: datetime) -> list[data.Check]:
    """The verdicts on what READERS found (None for a group that could not be asked)."""
    storage = found.get("storage") or {}
    return data.backup_checks(
        storage.get("status"),
        found.get("backup"),
        storage.get("databases", []),
        now,
        int(storage.get("archive_timeout") or 60),
    )


def status(inventory: str, now: datetime | None = None) -> Report:
    found = runner.read_groups(inventory, {**READERS, "app": _remote})
    for group, value in (found.pop("app") or {}).items():
        if found.get(group) is None:
            found[group] = value
    return Report(checks(found, now or datetime.now(UTC)), store=found.get("backup") or {})


def _backup_paths(host_data: Any) -> tuple[str, str, str]:
    """Backup root, PostgreSQL binaries and scratch directory of the backup server."""
    settings = BackupSettings.from_data(host_data)
    return settings.backup_root, settings.postgres_bin, BACKUP_SCRATCH


def _json_result(result: runner.CommandResult, what: str) -> dict[str, Any]:
    text = result.stdout
    try:
        value, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])
        return value
    except (json.JSONDecodeError, ValueError):
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise CodebError(f"{what} on {result.host} failed: {detail or 'no output'}") from None


def verify(inventory: str) -> tuple[bool, dict[str, Any], str]:
    """A restore drill on the backup server: its record (also kept there), and what it said."""
    result = runner.run_command(inventory, "backup", lambda host_data: backup_commands.drill(*_backup_paths(host_data)))
    record = _json_result(result, "the restore drill")
    return result.ok and bool(record.get("ok")), record, result.stderr


def restore_pitr(inventory: str, database: str, target: datetime | None) -> dict[str, Any]:
    """Restore `database` as it was at `target` (None: everything archived) into a scratch server."""
    if target is not None and target.tzinfo is None:
        raise CodebError("give the time with its zone, e.g. 2026-11-22T10:15:00+00:00")
    result = runner.run_command(
        inventory,
        "backup",
        lambda host_data: backup_commands.restore_pitr(
            *_backup_paths(host_data), database, target.isoformat() if target else "latest"
        ),
    )
    record = _json_result(result, "the point-in-time restore")
    if not result.ok:
        raise CodebError(f"point-in-time restore failed: {result.stderr.strip()[-2000:]}")
    return record


def drop_pitr(inventory: str, name: str) -> str:
    result = runner.run_command(
        inventory, "backup", lambda host_data: backup_commands.drop_pitr(*_backup_paths(host_data), name)
    )
    if not result.ok:
        raise CodebError(f"could not drop {name}: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip()


JOBS = {schedule.kind: f"{schedule.name}.service" for schedule in data.STORAGE_SCHEDULES}


def run_now(inventory: str, kinds: list[str]) -> list[runner.CommandResult]:
    """Start the storage server's backup jobs now and wait for each."""
    unknown = [k for k in kinds if k not in JOBS]
    if unknown:
        raise CodebError(f"unknown backup kind {unknown}: use {', '.join(JOBS)}")
    return [runner.run_command(inventory, "storage", _job_command(JOBS[kind])) for kind in kinds]


def _job_command(unit: str) -> Callable[[Any], StringCommand]:
    return lambda _: backup_commands.run_job(unit)
