"""Each project's data on the storage server (its database, role and Redis user) and the backup
policy: schedules, retention, and how old each kind of backup may be before it counts as missing.
Pure: names and numbers in, names, numbers and verdicts out."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from codeb_infra.config.roles import SECRETS_DIR
from codeb_infra.domain import names
from codeb_infra.domain.errors import CodebError

POSTGRES_PASSWORDS_DIR = f"{SECRETS_DIR}/postgres"
REDIS_USERS_DIR = f"{SECRETS_DIR}/redis-users"
MASTER_ENVS_DIR = f"{SECRETS_DIR}/projects"
PROTECTED_VARIABLES = ("DATABASE_URL", "POSTGRES_USER", "POSTGRES_PASSWORD", "REDIS_URL")
RESERVED_PROJECTS = frozenset({"codeb", "postgres", "default", "template0", "template1", "public"})

TOOLS_DIR = "/usr/local/lib/codeb"
STORAGE_TOOL = f"{TOOLS_DIR}/codeb-storage"
BACKUP_TOOL = f"{TOOLS_DIR}/codeb-backup"


@dataclass(frozen=True)
class ProjectData:
    """Where a project's data lives and who may reach it."""

    project: str

    @classmethod
    def of(cls, project: object) -> ProjectData:
        name = names.project_name(project)
        if name in RESERVED_PROJECTS:
            raise CodebError(f"project name {name!r} is reserved on the storage server; choose another")
        return cls(name)

    @property
    def database(self) -> str:
        """Database and role name: the project name with '-' as '_' (names stay unquoted in SQL)."""
        return self.project.replace("-", "_")

    @property
    def role(self) -> str:
        return self.database

    @property
    def redis_user(self) -> str:
        return self.project

    @property
    def key_prefix(self) -> str:
        return f"{self.project}:"

    @property
    def postgres_password_file(self) -> str:
        return posixpath.join(POSTGRES_PASSWORDS_DIR, f"{self.database}.password")

    @property
    def redis_password_file(self) -> str:
        return posixpath.join(REDIS_USERS_DIR, f"{self.redis_user}.password")

    @property
    def master_env_on_storage(self) -> str:
        return posixpath.join(MASTER_ENVS_DIR, f"{self.project}.env")

    @property
    def comment(self) -> str:
        """The database comment that marks it as a project's (what backups and drills cover)."""
        return f"codeb project {self.project}"


@dataclass(frozen=True)
class Schedule:
    """A systemd timer: what runs, as whom, when, and how old its latest result may get."""

    kind: str
    name: str
    description: str
    on_calendar: str
    user: str
    arguments: tuple[str, ...]
    max_age: timedelta


STORAGE_SCHEDULES = (
    Schedule(
        "base",
        "codeb-pg-basebackup",
        "PostgreSQL base backup to the backup server",
        "*-*-* 02:30:00",
        "postgres",
        ("base-backup",),
        timedelta(hours=26),
    ),
    Schedule(
        "dump",
        "codeb-pg-dump",
        "pg_dump of each project database to the backup server",
        "*-*-* 03:00:00",
        "postgres",
        ("dump",),
        timedelta(hours=26),
    ),
    Schedule(
        "redis",
        "codeb-redis-snapshot",
        "Redis RDB snapshot and AOF copy to the backup server",
        "hourly",
        "root",
        ("redis-snapshot",),
        timedelta(minutes=70),
    ),
)
BACKUP_SCHEDULES = (
    Schedule(
        "prune",
        "codeb-backup-prune",
        "Remove backups past their retention",
        "*-*-* 04:00:00",
        "codeb-backup",
        ("prune",),
        timedelta(hours=26),
    ),
    Schedule(
        "drill",
        "codeb-restore-drill",
        "Restore drill: base backup + WAL, dumps, RDB and AOF into scratch servers",
        "*-*-* 05:00:00",
        "codeb-backup",
        ("drill",),
        timedelta(hours=26),
    ),
)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Check:
    """One line of `codeb backup status`."""

    name: str
    ok: bool
    detail: str
    at: datetime | None = None
    size: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "at": self.at.isoformat() if self.at else None,
            "size": self.size,
        }


def _age_check(
    name: str, at: datetime | None, now: datetime, max_age: timedelta, size: int | None = None, extra: str = ""
) -> Check:
    if at is None:
        return Check(name, False, f"none yet (expected every {_span(max_age)})")
    age = now - at
    detail = f"{_span(age)} ago{extra}"
    if age > max_age:
        return Check(name, False, f"{detail}: older than {_span(max_age)}", at, size)
    return Check(name, True, detail, at, size)


def _span(delta: timedelta) -> str:
    seconds = int(max(delta.total_seconds(), 0))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"


def schedule(name: str) -> Schedule:
    return next(s for s in (*STORAGE_SCHEDULES, *BACKUP_SCHEDULES) if s.name == name)


def backup_checks(
    storage: dict[str, Any] | None,
    store: dict[str, Any] | None,
    databases: list[str],
    now: datetime,
    archive_timeout: int,
) -> list[Check]:
    """Verdicts from what the storage server (`codeb-storage status`) and the backup server
    (`codeb-backup status`) report; a server that could not be asked is itself a failure."""
    checks: list[Check] = []
    if storage is None:
        checks.append(Check("storage server", False, "could not be asked"))
    else:
        checks.extend(_archiver_checks(storage, now, archive_timeout))
        checks.append(_redis_check(storage.get("redis") or {}))
    if store is None:
        checks.append(Check("backup server", False, "could not be asked"))
        return checks
    base = store.get("base") or {}
    checks.append(
        _age_check(
            "base backup",
            _parse_time(base.get("finished_at")),
            now,
            schedule("codeb-pg-basebackup").max_age,
            base.get("size"),
            f" ({base.get('label')})" if base else "",
        )
    )
    wal = store.get("wal") or {}
    checks.append(
        Check(
            "WAL on backup server",
            bool(wal),
            f"newest {wal.get('newest')}, {wal.get('count')} files" if wal else "no WAL archived yet",
            _parse_time(wal.get("newest_at")),
            wal.get("bytes"),
        )
    )
    dumps = store.get("dumps") or {}
    for database in sorted(set(databases) | set(dumps)):
        dump = dumps.get(database) or {}
        checks.append(
            _age_check(
                f"dump {database}",
                _parse_time(dump.get("finished_at")),
                now,
                schedule("codeb-pg-dump").max_age,
                dump.get("size"),
            )
        )
    rdb = store.get("rdb") or {}
    checks.append(
        _age_check(
            "Redis RDB",
            _parse_time(rdb.get("finished_at")),
            now,
            schedule("codeb-redis-snapshot").max_age,
            rdb.get("size"),
        )
    )
    checks.append(_drill_check(store.get("drill"), now))
    return checks


def _archiver_checks(storage: dict[str, Any], now: datetime, archive_timeout: int) -> list[Check]:
    archiver = storage.get("archiver") or {}
    ready = storage.get("ready") or {}
    last_ok = _parse_time(archiver.get("last_archived_time"))
    last_failed = _parse_time(archiver.get("last_failed_time"))
    checks = []
    if last_failed is not None and (last_ok is None or last_failed > last_ok):
        checks.append(
            Check(
                "WAL archiving",
                False,
                f"FAILING since {last_failed.isoformat()} ({archiver.get('failed_count')} failures, "
                f"last {archiver.get('last_failed_wal')})",
                last_failed,
            )
        )
    else:
        checks.append(Check("WAL archiving", True, f"last {archiver.get('last_archived_wal') or 'none yet'}", last_ok))
    pending = int(ready.get("count") or 0)
    oldest = ready.get("oldest_age_seconds")
    allowed = 2 * archive_timeout + 60
    if pending and oldest is not None and float(oldest) > allowed:
        checks.append(
            Check(
                "WAL waiting to be archived",
                False,
                f"{pending} segments, oldest {int(float(oldest))}s (allowed {allowed}s)",
            )
        )
    else:
        checks.append(Check("WAL waiting to be archived", True, f"{pending} segments"))
    return checks


def _redis_check(redis: dict[str, Any]) -> Check:
    if "error" in redis:
        return Check("Redis persistence", False, str(redis["error"]))
    problems = []
    if not redis.get("aof_enabled"):
        problems.append("AOF off")
    if redis.get("aof_last_write_status") not in (None, "ok"):
        problems.append(f"AOF write {redis.get('aof_last_write_status')}")
    if redis.get("rdb_last_bgsave_status") not in (None, "ok"):
        problems.append(f"last BGSAVE {redis.get('rdb_last_bgsave_status')}")
    return Check("Redis persistence", not problems, ", ".join(problems) or "AOF on, last writes ok")


def _drill_check(drill: object, now: datetime) -> Check:
    if not isinstance(drill, dict):
        return _age_check("restore drill", None, now, schedule("codeb-restore-drill").max_age)
    at = _parse_time(drill.get("finished_at"))
    if not drill.get("ok"):
        failures = "; ".join(drill.get("failures") or []) or "failed"
        return Check("restore drill", False, f"FAILED: {failures}", at)
    rpo, rto = drill.get("recovery_point_seconds"), drill.get("recovery_time_seconds")
    figures = (
        f" (recovery point {rpo if rpo is None else round(float(rpo), 1)}s, recovery time {round(float(rto or 0), 1)}s)"
    )
    return _age_check("restore drill", at, now, schedule("codeb-restore-drill").max_age, extra=figures)
