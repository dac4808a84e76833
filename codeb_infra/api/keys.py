"""API keys: `codeb_{role}_{token}` shown once, kept on the server only as HMAC-SHA-256 under a
server-side secret; the role, project scope, expiry and revocation come from the server's record."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from codeb_infra.domain import names
from codeb_infra.domain.errors import CodebError


class Role(StrEnum):
    ADMIN = "admin"
    DEV = "dev"
    VIEW = "view"


# What each role may do; a tool names the least role it needs.
RANK = {Role.VIEW: 0, Role.DEV: 1, Role.ADMIN: 2}
KEY_FORMAT = re.compile(r"codeb_(admin|dev|view)_[A-Za-z0-9_-]{43}")
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@#:-]{0,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    projects TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    expires TEXT,
    revoked TEXT,
    last_used TEXT
);
"""


class KeyRejected(Exception):
    """No key, an unknown one, or a revoked or expired one (HTTP 401); the message says which."""


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    role: Role
    projects: tuple[str, ...]
    created: str
    expires: str | None
    revoked: str | None
    last_used: str | None

    def may(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]

    def covers(self, project: str) -> bool:
        """A key without projects covers all of them."""
        return not self.projects or project in self.projects

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "projects": list(self.projects),
            "created": self.created,
            "expires": self.expires,
            "revoked": self.revoked,
            "last_used": self.last_used,
        }


def role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise CodebError(f"invalid role {value!r}: use admin, dev or view") from None


def key_name(value: object) -> str:
    text = str(value)
    if not _KEY_NAME.fullmatch(text):
        raise CodebError(f"invalid key name {value!r}: letters, digits, spaces and ._@#:- (at most 64)")
    return text


def make_secret(path: str) -> None:
    """The HMAC secret, made once, root's alone (0600)."""
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))


class KeyStore:
    def __init__(self, db: str, secret_file: str) -> None:
        with open(secret_file) as handle:
            self._secret = handle.read().strip().encode()
        if not self._secret:
            raise CodebError(f"{secret_file} is empty")
        os.makedirs(os.path.dirname(db) or ".", exist_ok=True)
        self._db = db
        with self._connect() as connection:
            connection.executescript(_SCHEMA)
        os.chmod(db, 0o600)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._db, timeout=10, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    def _digest(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def create(
        self, *, role: Role, projects: tuple[str, ...] = (), expires_days: float | None = None, name: str | None = None
    ) -> tuple[KeyRecord, str]:
        """A new key: its record, and the key itself (shown once, never stored)."""
        projects = tuple(dict.fromkeys(names.project_name(p) for p in projects))
        if expires_days is not None and not 0 < expires_days <= 3650:
            raise CodebError(f"invalid expiry {expires_days!r}: expected 1 to 3650 days")
        key = f"codeb_{role.value}_{secrets.token_urlsafe(32)}"
        key_id = f"k{secrets.token_hex(4)}"
        created = now()
        record = KeyRecord(
            id=key_id,
            name=key_name(name) if name else key_id,
            role=role,
            projects=projects,
            created=created.isoformat(),
            expires=(created + timedelta(days=expires_days)).isoformat() if expires_days else None,
            revoked=None,
            last_used=None,
        )
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO keys (id, name, role, projects, digest, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.name,
                    role.value,
                    ",".join(projects),
                    self._digest(key),
                    record.created,
                    record.expires,
                ),
            )
        return record, key

    def authenticate(self, key: str | None, *, at: datetime | None = None) -> KeyRecord:
        if not key:
            raise KeyRejected("no API key: send it in the X-API-Key header (or as a Bearer token for /mcp)")
        if not KEY_FORMAT.fullmatch(key):
            raise KeyRejected("not a codeb API key (expected codeb_{role}_{token})")
        digest = self._digest(key)
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM keys WHERE digest = ?", (digest,)).fetchone()
            if row is None or not hmac.compare_digest(row["digest"], digest):
                raise KeyRejected("unknown API key")
            record = _record(row)
            moment = at or now()
            if record.revoked:
                raise KeyRejected(f"API key {record.id} was revoked at {record.revoked}")
            if record.expires and datetime.fromisoformat(record.expires) <= moment:
                raise KeyRejected(f"API key {record.id} expired at {record.expires}")
            connection.execute("UPDATE keys SET last_used = ? WHERE id = ?", (moment.isoformat(), record.id))
        return record

    def record(self, key_id: str, *, at: datetime | None = None) -> KeyRecord:
        """The record of a key still in force (a dashboard session names its key by id); a
        session's request is a use of its key (`last_used`)."""
        moment = at or now()
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                raise KeyRejected(f"API key {key_id} no longer exists")
            record = _record(row)
            if record.revoked:
                raise KeyRejected(f"API key {record.id} was revoked at {record.revoked}")
            if record.expires and datetime.fromisoformat(record.expires) <= moment:
                raise KeyRejected(f"API key {record.id} expired at {record.expires}")
            connection.execute("UPDATE keys SET last_used = ? WHERE id = ?", (moment.isoformat(), record.id))
        return record

    def list(self) -> list[KeyRecord]:
        with self._connect() as connection:
            return [_record(row) for row in connection.execute("SELECT * FROM keys ORDER BY created, id")]

    def revoke(self, key_id: str) -> KeyRecord:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                raise CodebError(f"no API key with id {key_id!r} (see `codeb keys list`)")
            if not row["revoked"]:
                connection.execute("UPDATE keys SET revoked = ? WHERE id = ?", (now().isoformat(), key_id))
            return _record(connection.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone())


def _record(row: sqlite3.Row) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        projects=tuple(p for p in row["projects"].split(",") if p),
        created=row["created"],
        expires=row["expires"],
        revoked=row["revoked"],
        last_used=row["last_used"],
    )
