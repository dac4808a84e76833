"""The audit log: one SQLite row per request or change, each carrying the hash of the row before
it; the database refuses UPDATE and DELETE, and the newest head hash is shipped off the server so
that even a rewritten chain is caught. Standard library only (it also runs as `codeb-audit`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
FIELDS = (
    "at",
    "request_id",
    "actor",
    "key_id",
    "key_name",
    "role",
    "source",
    "tool",
    "project",
    "env",
    "outcome",
    "status",
    "duration_ms",
    "params",
    "error",
)
OUTCOMES = ("allowed", "denied", "invalid", "failed")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    {", ".join(f"{field} {'INTEGER' if field in ('status', 'duration_ms') else 'TEXT'}" for field in FIELDS)},
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END;
"""
_SECRET_NAME = re.compile(r"pass|secret|token|key|credential|auth|values|env_file|variables", re.IGNORECASE)
_KEY_LIKE = re.compile(r"codeb_(admin|dev|view)_\S+")
REDACTED = "[redacted]"


def redact(params: Any) -> Any:
    """Parameters as the log keeps them: every value under a secret-looking name, and anything
    that looks like an API key, replaced (env values never reach the log)."""
    if isinstance(params, Mapping):
        return {
            str(k): _env_names(v) if k == "values" else REDACTED if _SECRET_NAME.search(str(k)) else redact(v)
            for k, v in params.items()
        }
    if isinstance(params, list | tuple):
        return [redact(v) for v in params]
    if isinstance(params, str):
        return REDACTED if _KEY_LIKE.search(params) else params[:500]
    if params is None or isinstance(params, bool | int | float):
        return params
    return str(params)[:500]


def _env_names(values: Any) -> Any:
    """An env change's values as the log keeps them: the names only."""
    if isinstance(values, Mapping):
        return {str(name): REDACTED for name in values}
    return REDACTED


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    body = json.dumps({field: row.get(field) for field in FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = path
        fresh = not os.path.exists(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with self._connect() as connection:
            connection.executescript(_SCHEMA)
        if fresh:
            os.chmod(path, 0o600)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    def append(self, **entry: Any) -> dict[str, Any]:
        """One row; the chain is extended under SQLite's write lock, so concurrent writers (the API,
        a CLI run over SSH) never fork it."""
        unknown = set(entry) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown audit fields {sorted(unknown)}")
        row: dict[str, Any] = {field: entry.get(field) for field in FIELDS}
        row["at"] = row["at"] or datetime.now(UTC).isoformat(timespec="milliseconds")
        if row["outcome"] not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        row["params"] = json.dumps(redact(entry.get("params") or {}), sort_keys=True)
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            last = connection.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = last["hash"] if last else GENESIS
            row["prev_hash"], row["hash"] = prev, row_hash(prev, row)
            columns = [*FIELDS, "prev_hash", "hash"]
            cursor = connection.execute(
                f"INSERT INTO audit ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                [row[c] for c in columns],
            )
            connection.execute("COMMIT")
            row["seq"] = cursor.lastrowid
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()
        return row

    def rows(
        self, *, project: str | None = None, since: str | None = None, projects: Iterable[str] = (), limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Newest last; ``projects`` limits to those projects (a scoped key's view)."""
        where, args = [], []
        if project:
            where.append("project = ?")
            args.append(project)
        scope = list(projects)
        if scope:
            where.append(f"project IN ({', '.join('?' for _ in scope)})")
            args.extend(scope)
        if since:
            where.append("at >= ?")
            args.append(since)
        sql = f"SELECT * FROM audit {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY seq DESC LIMIT ?"
        with self._connect() as connection:
            found = [dict(r) for r in connection.execute(sql, [*args, limit])]
        for row in found:
            row["params"] = json.loads(row["params"] or "{}")
        return found[::-1]

    def head(self) -> Head | None:
        with self._connect() as connection:
            last = connection.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return Head(last["seq"], last["hash"]) if last else None

    def verify(self, heads: Iterable[Head] = ()) -> str | None:
        """None when the chain holds (and matches every shipped head), else what is wrong first."""
        with self._connect() as connection:
            triggers = {r["name"] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            rows = [dict(r) for r in connection.execute("SELECT * FROM audit ORDER BY seq")]
        missing = {"audit_no_update", "audit_no_delete"} - triggers
        if missing:
            return f"the append-only triggers {', '.join(sorted(missing))} were dropped"
        prev, expected_seq = GENESIS, 1
        by_seq: dict[int, str] = {}
        for row in rows:
            if row["seq"] != expected_seq:
                return f"row {expected_seq} is missing (next row is {row['seq']})"
            if row["prev_hash"] != prev:
                return (
                    f"row {row['seq']} does not follow row {row['seq'] - 1}"
                    " (prev_hash differs: deleted, inserted or reordered rows)"
                )
            if row_hash(prev, row) != row["hash"]:
                return f"row {row['seq']} was changed after it was written (its hash does not match its content)"
            by_seq[row["seq"]] = prev = row["hash"]
            expected_seq += 1
        for head in sorted(heads, key=lambda h: h.seq):
            if head.seq not in by_seq:
                return f"row {head.seq}, whose hash was shipped to the backup server, is gone"
            if by_seq[head.seq] != head.hash:
                return (
                    f"row {head.seq} differs from the head hash shipped to the backup server (the chain was rewritten)"
                )
        return None
