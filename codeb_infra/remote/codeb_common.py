"""What codeb-storage (which writes backups) and codeb-backup (which stores and restores them) must
agree on: the canary summary, backup_label parsing, WAL file, database and stamp names, and how a
failed step is reported. Shipped beside both tools; standard library only."""

from __future__ import annotations

import datetime
import hashlib
import re
import subprocess
from typing import IO, Any

EXIT_FAILED = 1
EXIT_USAGE = 2

SEGMENT_PATTERN = r"[0-9A-F]{24}"
STAMP_PATTERN = r"[0-9]{8}T[0-9]{6}Z"
DB_PATTERN = r"[a-z0-9_]{1,63}"
WAL_NAME = re.compile(
    rf"{SEGMENT_PATTERN}|{SEGMENT_PATTERN}\.partial|[0-9A-F]{{8}}\.history|{SEGMENT_PATTERN}\.[0-9A-F]{{8}}\.backup"
)
STAMP = re.compile(STAMP_PATTERN)
DB_NAME = re.compile(DB_PATTERN)
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"

# Run when a backup is written (its rows go into the backup's meta) and again in the restored copy.
CANARY_SUMMARY_SQL = (
    "SELECT count(*), coalesce(max(id), 0), "
    "md5(coalesce(string_agg(id::text || ':' || token, ',' ORDER BY id), '')) "
    "FROM codeb_backup.canary WHERE id <= {last_id}"
)


class Failure(Exception):
    """A step that failed; the message names what and why."""


def canary_summary_sql(last_id: int | str) -> str:
    return CANARY_SUMMARY_SQL.format(last_id=int(last_id))  # int(): nothing but a number reaches the SQL


def parse_canary_summary(output: str, last_id: int | str) -> dict[str, Any]:
    rows, _max_id, checksum = output.strip().split("|")
    return {"last_id": int(last_id), "rows": int(rows), "checksum": checksum}


def parse_backup_label(text: str) -> str:
    """The start WAL file name from a backup_label file."""
    match = re.search(rf"^START WAL LOCATION: \S+ \(file ({SEGMENT_PATTERN})\)$", text, re.MULTILINE)
    if not match:
        raise ValueError("backup_label has no START WAL LOCATION line")
    return match.group(1)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def stamp(moment: datetime.datetime) -> str:
    """The name part of a backup taken at ``moment`` (20261122T030000Z)."""
    return moment.strftime(_STAMP_FORMAT)


def parse_stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, _STAMP_FORMAT).replace(tzinfo=datetime.UTC)


def iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat()


def sha256(handle: IO[bytes]) -> str:
    """The sha256 of an open binary file, read from its start; left at its start for the next reader."""
    handle.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def run(argv: list[str], what: str, **kwargs: Any) -> str:
    """Run a program; a non-zero exit is a Failure naming ``what`` with its last lines of output."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise Failure(f"{what} failed (exit {result.returncode}): {' / '.join(detail)}")
    return result.stdout
