"""The backup root of the backup server: which paths the storage server may send (the areas), the
order of WAL files and which of them a prune may remove, and reading what the root holds (complete
base backups, dumps and snapshots by their meta files)."""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Iterable
from typing import Any

from .codeb_common import DB_NAME, DB_PATTERN, SEGMENT_PATTERN, STAMP, STAMP_PATTERN, WAL_NAME, sha256

AREAS = (
    ("wal", re.compile(rf"wal/(?:{WAL_NAME.pattern})")),
    ("base", re.compile(rf"base/{STAMP_PATTERN}/(?:base\.tar\.gz|backup_manifest|meta\.json)")),
    ("dumps", re.compile(rf"dumps/{DB_PATTERN}/{STAMP_PATTERN}\.(?:dump|json)")),
    ("redis", re.compile(rf"redis/(?:{STAMP_PATTERN}\.(?:rdb|json)|aof-latest\.(?:tar|json))")),
    # The app server's audit log heads (sequence number and hash), never replaced once stored.
    ("audit", re.compile(r"audit/[0-9]{12}-[0-9a-f]{64}")),
    ("env", re.compile(r"env/[a-z0-9][a-z0-9-]{0,62}/(?:production|staging)/(?:[0-9]{1,9}\.env|index\.json)")),
)


class BadPath(ValueError):
    """A relative path outside the whitelist of what the storage server may send."""


# ---------------------------------------------------------------- names and times


def area_of(rel: str) -> str:
    """The area ('wal', 'base', 'dumps', 'redis', 'env') a shipped relative path belongs to, or BadPath."""
    for area, pattern in AREAS:
        if pattern.fullmatch(rel):
            return area
    raise BadPath(
        f"refusing {rel!r}: not one of wal/<WAL file>, base/<LABEL>/(base.tar.gz|backup_manifest|meta.json), "
        "dumps/<db>/<STAMP>.(dump|json), redis/<STAMP>.(rdb|json), redis/aof-latest.(tar|json), "
        "env/<project>/<env>/(<N>.env|index.json), audit/<SEQ>-<SHA256>"
    )


def parse_time(text: str) -> datetime.datetime:
    """An ISO-8601 time with a timezone (a trailing Z is fine); naive times are refused."""
    try:
        value = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"{text!r} is not an ISO-8601 time") from error
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone; add Z or +00:00")
    return value.astimezone(datetime.UTC)


def wal_position(name: str) -> str:
    """The (log, segment) part of a WAL file name; the timeline is ignored, as pg_archivecleanup does,
    so a segment of a parent timeline is never removed too early."""
    return name[8:24]


def wal_to_remove(names: Iterable[str], keep_from: str) -> list[str]:
    """WAL archive files older than segment ``keep_from`` (segments, .partial and .backup files);
    .history files are always kept."""
    keep = wal_position(keep_from)
    return sorted(n for n in names if not n.endswith(".history") and WAL_NAME.fullmatch(n) and wal_position(n) < keep)


def segment_number(name: str, segment_size: int) -> int:
    log, seg = int(name[8:16], 16), int(name[16:24], 16)
    return log * (0x100000000 // segment_size) + seg


def segment_name(timeline: int, number: int, segment_size: int) -> str:
    per_log = 0x100000000 // segment_size
    return f"{timeline:08X}{number // per_log:08X}{number % per_log:08X}"


def missing_segments(names: Iterable[str], start_wal: str, segment_size: int) -> list[str]:
    """Segment names absent from the archive between ``start_wal`` and the newest archived segment."""
    timeline = int(start_wal[:8], 16)
    first = segment_number(start_wal, segment_size)
    have: dict[int, int] = {}
    for name in names:
        if re.fullmatch(SEGMENT_PATTERN, name) and int(name[:8], 16) >= timeline:
            have.setdefault(segment_number(name, segment_size), int(name[:8], 16))
    if not have:
        return [start_wal]
    newest = max(have)
    return [segment_name(timeline, n, segment_size) for n in range(first, newest + 1) if n not in have]


def stale(items: dict[str, datetime.datetime], now: datetime.datetime, max_age: datetime.timedelta) -> list[str]:
    """Keys of ``items`` ({key: time}) older than ``max_age``, never the newest one."""
    if not items:
        return []
    newest = max(items, key=lambda key: (items[key], key))
    return sorted(key for key, when in items.items() if key != newest and when < now - max_age)


# ---------------------------------------------------------------- files


def sha256_file(path: str) -> str:
    with open(path, "rb") as handle:
        return sha256(handle)


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(root: str, rel_dir: str) -> str:
    """Create root/rel_dir one level at a time, each new directory 0750."""
    path = root
    if not os.path.isdir(root):
        os.makedirs(root, mode=0o750, exist_ok=True)
    for part in [p for p in rel_dir.split("/") if p]:
        path = os.path.join(path, part)
        try:
            os.mkdir(path, 0o750)
            os.chmod(path, 0o750)
        except FileExistsError:
            pass
    return path


def read_json(path: str) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def append_line(path: str, record: dict[str, Any]) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# ---------------------------------------------------------------- what the root holds


def bases(root: str) -> dict[str, dict[str, Any]]:
    """{label: meta} of complete base backups (meta.json present and readable)."""
    found = {}
    base_dir = os.path.join(root, "base")
    for label in listdir(base_dir):
        if STAMP.fullmatch(label):
            meta = read_json(os.path.join(base_dir, label, "meta.json"))
            if isinstance(meta, dict) and meta.get("finished_at") and meta.get("start_wal"):
                found[label] = meta
    return found


def metas(directory: str, suffix: str) -> dict[str, dict[str, Any]]:
    """{stamp: meta} for STAMP.json files next to a STAMP.<suffix> file."""
    found = {}
    for entry in listdir(directory):
        stamp, _, ext = entry.partition(".")
        if ext == "json" and STAMP.fullmatch(stamp) and os.path.exists(os.path.join(directory, f"{stamp}.{suffix}")):
            meta = read_json(os.path.join(directory, entry))
            if isinstance(meta, dict):
                found[stamp] = meta
    return found


def dumps(root: str) -> dict[str, dict[str, dict[str, Any]]]:
    dumps_dir = os.path.join(root, "dumps")
    return {db: metas(os.path.join(dumps_dir, db), "dump") for db in listdir(dumps_dir) if DB_NAME.fullmatch(db)}


def listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def newest(metas: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    if not metas:
        return None
    stamp = max(metas)
    return stamp, metas[stamp]


def wal_files(root: str) -> list[str]:
    return [name for name in listdir(os.path.join(root, "wal")) if WAL_NAME.fullmatch(name)]
