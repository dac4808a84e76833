"""codeb-backup's side of receiving, reporting and expiring: `put` (store what the storage server
sends, checked against its sha256), `status` (what the backup root holds) and `prune` (retention)."""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from . import codeb_backup_archive as archive
from . import codeb_common as common
from .codeb_common import EXIT_USAGE, SEGMENT_PATTERN, STAMP

EXIT_CONFLICT = 3
EXIT_CORRUPT = 4
EXIT_UNWRITTEN = 5
LEFTOVER_SECONDS = 86400

# ---------------------------------------------------------------- put


def put(args: argparse.Namespace) -> int:
    """stdin -> root/REL, atomically, only if its sha256 is what the sender computed."""
    try:
        area = archive.area_of(args.rel)
    except archive.BadPath as error:
        sys.stderr.write(f"{error}\n")
        return EXIT_USAGE
    if not re.fullmatch(r"[0-9a-f]{64}", args.sha256):
        sys.stderr.write(f"refusing {args.rel}: {args.sha256!r} is not a lowercase hex sha256\n")
        return EXIT_USAGE
    if args.replace and area == "wal":
        sys.stderr.write(f"refusing {args.rel}: a WAL file is never replaced\n")
        return EXIT_USAGE
    target = os.path.join(args.root, args.rel)
    parent = archive.makedirs(args.root, os.path.dirname(args.rel))
    if os.path.exists(target):
        existing = archive.sha256_file(target)
        if existing == args.sha256:
            print(f"{args.rel} already stored with identical content")
            return 0
        if not args.replace:
            sys.stderr.write(
                f"{args.rel} already stored with different content (sha256 {existing}, offered {args.sha256}); "
                "kept the stored one\n"
            )
            return EXIT_CONFLICT
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=parent)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:  # a full disk above all: say so in one line, keep nothing partial
        free = shutil.disk_usage(parent).free
        sys.stderr.write(
            f"{args.rel}: not stored: {error.strerror} on the backup server ({free} bytes free in {parent}); "
            "nothing stored\n"
        )
        os.unlink(tmp)
        return EXIT_UNWRITTEN
    try:
        if digest.hexdigest() != args.sha256:
            sys.stderr.write(
                f"{args.rel}: received {size} bytes with sha256 {digest.hexdigest()}, expected {args.sha256} "
                "(transfer cut short or file changed while sent); nothing stored\n"
            )
            return EXIT_CORRUPT
        os.chmod(tmp, 0o600 if area == "env" else 0o640)  # env versions hold secrets
        if args.replace:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # unlike rename, never overwrites a file another put stored meanwhile
            except FileExistsError:
                if archive.sha256_file(target) != args.sha256:
                    sys.stderr.write(f"{args.rel} was stored with different content meanwhile; kept the stored one\n")
                    return EXIT_CONFLICT
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    archive.fsync_dir(parent)
    print(f"stored {args.rel} ({size} bytes)")
    return 0


# ---------------------------------------------------------------- status


def get(args: argparse.Namespace) -> int:
    """root/REL to stdout, for the env area only (what the app server restores its env store from)."""
    try:
        area = archive.area_of(args.rel)
    except archive.BadPath as error:
        sys.stderr.write(f"{error}\n")
        return EXIT_USAGE
    if area != "env":
        sys.stderr.write(f"refusing {args.rel}: only env files are handed back\n")
        return EXIT_USAGE
    try:
        with open(os.path.join(args.root, args.rel), "rb") as handle:
            sys.stdout.buffer.write(handle.read())
    except FileNotFoundError:
        sys.stderr.write(f"{args.rel} is not stored\n")
        return common.EXIT_FAILED
    return 0


def status(args: argparse.Namespace) -> int:
    root = args.root
    out: dict[str, Any] = {"base": None, "wal": None, "dumps": {}, "rdb": None, "aof": None, "drill": None}
    bases = archive.bases(root)
    if bases:
        label = max(bases, key=lambda key: (bases[key]["finished_at"], key))
        meta = bases[label]
        out["base"] = {
            "label": label,
            "finished_at": meta["finished_at"],
            "size": meta.get("size"),
            "start_wal": meta["start_wal"],
        }
    wal_dir = os.path.join(root, "wal")
    names = archive.wal_files(root)
    segments = [n for n in names if re.fullmatch(SEGMENT_PATTERN, n)]
    if names:
        newest_wal = max(segments or names)
        stats = {name: os.stat(os.path.join(wal_dir, name)) for name in names}
        out["wal"] = {
            "newest": newest_wal,
            "newest_at": common.iso(datetime.datetime.fromtimestamp(stats[newest_wal].st_mtime, datetime.UTC)),
            "count": len(names),
            "bytes": sum(st.st_size for st in stats.values()),
        }
    for db, metas in archive.dumps(root).items():
        newest = archive.newest(metas)
        if newest:
            stamp, meta = newest
            out["dumps"][db] = {
                "file": f"dumps/{db}/{stamp}.dump",
                "finished_at": meta.get("finished_at"),
                "size": meta.get("size"),
            }
    newest = archive.newest(archive.metas(os.path.join(root, "redis"), "rdb"))
    if newest:
        stamp, meta = newest
        out["rdb"] = {"file": f"redis/{stamp}.rdb", "finished_at": meta.get("finished_at"), "size": meta.get("size")}
    aof = archive.read_json(os.path.join(root, "redis", "aof-latest.json"))
    if isinstance(aof, dict) and os.path.exists(os.path.join(root, "redis", "aof-latest.tar")):
        out["aof"] = {"file": "redis/aof-latest.tar", "finished_at": aof.get("finished_at"), "size": aof.get("size")}
    out["drill"] = _last_drill(root)
    out["drills"] = _drill_history(root)
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def _last_drill(root: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(root, "drills", "history.jsonl")) as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    if not lines:
        return None
    try:
        return json.loads(lines[-1])
    except ValueError:
        return {"error": "last line of drills/history.jsonl is not JSON"}


DRILL_HISTORY = 50
DRILL_FIELDS = ("started_at", "finished_at", "ok", "recovery_point_seconds", "recovery_time_seconds")


def _drill_history(root: str) -> list[dict[str, Any]]:
    """The last drills, oldest first, each as when, whether it passed and its recovery point and time."""
    try:
        with open(os.path.join(root, "drills", "history.jsonl")) as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()][-DRILL_HISTORY:]
    except FileNotFoundError:
        return []
    history = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            history.append({field: record.get(field) for field in DRILL_FIELDS})
    return history


# ---------------------------------------------------------------- prune


def prune(args: argparse.Namespace) -> int:
    root = args.root
    now = common.now()
    removed = []

    def remove(path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)
        else:
            return
        removed.append(os.path.relpath(path, root))

    keep_age = datetime.timedelta(days=args.keep_days)
    bases = archive.bases(root)
    finished = {label: archive.parse_time(meta["finished_at"]) for label, meta in bases.items()}
    for label in archive.stale(finished, now, keep_age):
        remove(os.path.join(root, "base", label))
        bases.pop(label)
    for label in archive.listdir(os.path.join(root, "base")):
        if label not in bases and STAMP.fullmatch(label) and common.parse_stamp(label) < now - _leftover():
            remove(os.path.join(root, "base", label))
    if bases:
        keep_from = min(meta["start_wal"] for meta in bases.values())
        for name in archive.wal_to_remove(archive.wal_files(root), keep_from):
            remove(os.path.join(root, "wal", name))

    for db, metas in archive.dumps(root).items():
        directory = os.path.join(root, "dumps", db)
        for stamp in archive.stale(
            {s: archive.parse_time(m["finished_at"]) for s, m in metas.items() if m.get("finished_at")}, now, keep_age
        ):
            remove(os.path.join(directory, f"{stamp}.dump"))
            remove(os.path.join(directory, f"{stamp}.json"))
        _remove_leftovers(directory, "dump", metas, now, remove)

    redis_dir = os.path.join(root, "redis")
    rdbs = archive.metas(redis_dir, "rdb")
    for stamp in archive.stale(
        {s: archive.parse_time(m["finished_at"]) for s, m in rdbs.items() if m.get("finished_at")},
        now,
        datetime.timedelta(hours=args.rdb_hours),
    ):
        remove(os.path.join(redis_dir, f"{stamp}.rdb"))
        remove(os.path.join(redis_dir, f"{stamp}.json"))
    _remove_leftovers(redis_dir, "rdb", rdbs, now, remove)

    for directory, dirs, files in os.walk(root):
        if directory == root and "env" in dirs:
            dirs.remove("env")  # not codeb-backup's to clean
        for name in files:
            path = os.path.join(directory, name)
            if name.startswith(".tmp-") and os.stat(path).st_mtime < time.time() - LEFTOVER_SECONDS:
                remove(path)
    for line in removed:
        print(f"removed {line}")
    print(f"prune: removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}")
    return 0


def _leftover() -> datetime.timedelta:
    return datetime.timedelta(seconds=LEFTOVER_SECONDS)


def _remove_leftovers(
    directory: str,
    suffix: str,
    complete: dict[str, dict[str, Any]],
    now: datetime.datetime,
    remove: Callable[[str], None],
) -> None:
    """Data files without their .json (or the other way round) older than a day: an upload that died."""
    for entry in archive.listdir(directory):
        stamp, _, ext = entry.partition(".")
        if (
            ext in (suffix, "json")
            and STAMP.fullmatch(stamp)
            and stamp not in complete
            and common.parse_stamp(stamp) < now - _leftover()
        ):
            remove(os.path.join(directory, entry))


def audit_heads(args: argparse.Namespace) -> int:
    """The audit heads the app server shipped, one `SEQ HASH` a line."""
    for name in sorted(archive.listdir(os.path.join(args.root, "audit"))):
        seq, _, digest = name.partition("-")
        if seq.isdigit() and re.fullmatch(r"[0-9a-f]{64}", digest):
            print(int(seq), digest)
    return 0
