"""Moving the storage server: what the source and target report, the preflight checks of
`codeb migrate storage --dry-run`, the steps of a migration and its step record kept on the
target (so a re-run, from any controller, continues where one stopped). Pure."""

from __future__ import annotations

import json
import re
from enum import IntEnum

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.migrate import GRACE_HOURS, Check

# Redis FAILOVER exists from 6.2 on.
REDIS_FAILOVER_SINCE = (6, 2)
# Free disk on the target must hold the data this many times over (WAL, growth during the copy).
DISK_MARGIN = 1.5
DISK_FLOOR = 256 * 1024 * 1024


class PostgresFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    version_num: int
    wal_level: str
    max_wal_senders: int
    data_bytes: int
    lsn: str
    in_recovery: bool

    @property
    def major(self) -> int:
        return self.version_num // 10000

    @classmethod
    def parse(cls, text: str) -> PostgresFacts:
        parts = text.strip().split("|")
        if len(parts) != 6:
            raise CodebError(f"unexpected PostgreSQL settings: {text.strip()[:120]!r}")
        version, wal_level, senders, size, lsn, recovery = parts
        return cls(
            version_num=int(version),
            wal_level=wal_level,
            max_wal_senders=int(senders),
            data_bytes=int(size or 0),
            lsn=lsn,
            in_recovery=recovery == "t",
        )


class TargetFacts(BaseModel):
    """What the target offers before it is bootstrapped: the PostgreSQL major its apt installs,
    the Redis it would run, its free disk."""

    model_config = ConfigDict(frozen=True)

    reachable: bool
    reason: str = ""
    postgres_candidate: str = ""
    free_bytes: int = 0


def lsn(value: str) -> int:
    """A PostgreSQL LSN (`16/B374D848`) as a byte position."""
    try:
        high, low = value.strip().split("/")
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        raise CodebError(f"not a WAL position: {value.strip()[:40]!r}") from None


def redis_version(text: str) -> tuple[int, int, int]:
    """`Redis server v=7.0.15 sha=...` (or apt's `v=7.0.15-1~deb12u10`) -> (7, 0, 15)."""
    found = re.search(r"\bv=(\d+)\.(\d+)(?:\.(\d+))?", text)
    if found is None:
        raise CodebError(f"cannot read the Redis version from {text.strip()[:80]!r}")
    major, minor, patch = found.groups()
    return (int(major), int(minor), int(patch or 0))


def candidate_major(candidate: str) -> int | None:
    """apt's candidate `15.14-0+deb12u1` -> 15; None when apt offers none."""
    head = candidate.strip().split(".")[0].split("-")[0]
    return int(head) if head.isdigit() else None


def reach_check(target: TargetFacts) -> Check:
    """Whether the target answers over SSH (the first check; the others need it)."""
    return Check(name="target reachable", ok=target.reachable, detail=target.reason or "SSH answers")


def preflight(
    *,
    source: PostgresFacts,
    source_redis: str,
    target: TargetFacts,
    target_redis: str,
    hba_rows: int,
    wanted_major: int,
) -> list[Check]:
    """Every check of `--dry-run`, each with what was found; nothing here reads a server."""
    checks = [reach_check(target)]
    if not target.reachable:
        return checks
    target_major = candidate_major(target.postgres_candidate)
    checks.append(
        Check(
            name="PostgreSQL major version",
            ok=target_major == source.major == wanted_major,
            detail=f"source runs {source.major}, target installs "
            + (f"{target_major} ({target.postgres_candidate})" if target_major else "none (apt has no candidate)"),
        )
    )
    checks.append(
        Check(
            name="wal_level",
            ok=source.wal_level in ("replica", "logical"),
            detail=f"{source.wal_level} (replica or logical needed)",
        )
    )
    checks.append(
        Check(name="max_wal_senders", ok=source.max_wal_senders >= 2, detail=f"{source.max_wal_senders} (2 needed)")
    )
    checks.append(
        Check(
            name="pg_hba allows replication from the target",
            ok=hba_rows > 0,
            detail="a host replication rule matches"
            if hba_rows
            else "no rule; run the migration's prepare step (it adds one)",
        )
    )
    needed = max(int(source.data_bytes * DISK_MARGIN), DISK_FLOOR)
    checks.append(
        Check(
            name="free disk on the target",
            ok=target.free_bytes >= needed,
            detail=f"{_mib(target.free_bytes)} free, {_mib(needed)} needed "
            f"(data {_mib(source.data_bytes)} x {DISK_MARGIN})",
        )
    )
    for side, text in (("source", source_redis), ("target", target_redis)):
        try:
            version = redis_version(text)
            ok, found = version >= REDIS_FAILOVER_SINCE, ".".join(map(str, version))
        except CodebError as error:
            ok, found = False, str(error)
        checks.append(Check(name=f"Redis FAILOVER on the {side}", ok=ok, detail=f"{found} (6.2 or newer needed)"))
    return checks


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MiB"


class Step(IntEnum):
    """The steps of a storage migration, in order; the record holds the last one done."""

    STARTED = 0
    PREPARED = 1  # secrets copied, target bootstrapped as storage, replication role and rule on the source
    STANDBY = 2  # base backup taken, target streams from the source; Redis replicates
    FENCED = 3  # source refuses writes
    PROMOTED = 4  # target is the PostgreSQL and Redis primary
    REPOINTED = 5  # every master env names the target, pushed to the app server
    DONE = 6


class Record(BaseModel):
    """The step record on the target: which step is done, from where, since when, grace until."""

    model_config = ConfigDict(frozen=True)

    role: str = "storage"
    source: str
    source_address: str
    target_address: str
    step: Step = Step.STARTED
    started: float
    grace_until: float = 0.0
    aborted: bool = False

    def done(self, step: Step, now: float) -> Record:
        update: dict[str, object] = {"step": max(self.step, step)}
        if step == Step.DONE and not self.grace_until:
            update["grace_until"] = now + GRACE_HOURS * 3600
        return self.model_copy(update=update)

    def text(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> Record | None:
        if not text.strip():
            return None
        try:
            return cls.model_validate_json(text)
        except ValueError:
            raise CodebError(f"the migration record on the target is unreadable: {text.strip()[:80]!r}") from None


def resume_from(record: Record | None, *, source: str, source_address: str, target_address: str, now: float) -> Record:
    """The record to go on from: the target's own, or a new one. A record of another source is
    refused (the target already took the storage role from elsewhere)."""
    if record is None:
        return Record(source=source, source_address=source_address, target_address=target_address, started=now)
    if record.source != source or record.target_address != target_address:
        raise CodebError(
            f"the target's migration record is of {record.source} -> {record.target_address}, "
            f"not {source} -> {target_address}; remove it only if that migration was abandoned"
        )
    return record


def caught_up(source_lsn: str, replayed_lsn: str) -> bool:
    """The standby replayed everything the fenced source flushed."""
    return lsn(replayed_lsn) >= lsn(source_lsn)


def redis_in_sync(info: str) -> bool:
    """On the target: `INFO replication` says it follows a master whose link is up and whose
    initial sync is over."""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return (
        fields.get("role", "").strip() == "slave"
        and fields.get("master_link_status", "").strip() == "up"
        and fields.get("master_sync_in_progress", "1").strip() == "0"
    )


def redis_role(info: str) -> str:
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return fields.get("role", "").strip()
