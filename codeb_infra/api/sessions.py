"""Dashboard sessions: an API key signed in once is exchanged for a random session id (the cookie)
and a CSRF token; the server keeps only the SHA-256 of the id, the key's id and an expiry, in a
0600 SQLite file, so signing out (or the key's revocation) ends the session on the server."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SESSION_HOURS = 8.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Session:
    key_id: str
    csrf: str
    expires: datetime

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and given != "" and hmac.compare_digest(given.encode(), self.csrf.encode())


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class SessionStore:
    def __init__(self, db: str, hours: float = SESSION_HOURS) -> None:
        self._db = db
        self.lifetime = timedelta(hours=hours)
        os.makedirs(os.path.dirname(db) or ".", mode=0o700, exist_ok=True)
        if not os.path.exists(db):
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(db, 0o600)
        with self._connect() as connection:
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._db, timeout=10, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    def open(self, key_id: str, *, at: datetime | None = None) -> tuple[str, Session]:
        """A new session for a signed-in key: the id for the cookie (never stored), and the session."""
        moment = at or _now()
        session_id = secrets.token_urlsafe(32)
        session = Session(key_id=key_id, csrf=secrets.token_urlsafe(32), expires=moment + self.lifetime)
        with self._connect() as connection:
            connection.execute("DELETE FROM sessions WHERE expires <= ?", (moment.isoformat(),))
            connection.execute(
                "INSERT INTO sessions (digest, key_id, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
                (_digest(session_id), key_id, session.csrf, moment.isoformat(), session.expires.isoformat()),
            )
        return session_id, session

    def find(self, session_id: str | None, *, at: datetime | None = None) -> Session | None:
        """The session a cookie names, while it lasts."""
        if not session_id or len(session_id) > 128:
            return None
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM sessions WHERE digest = ?", (_digest(session_id),)).fetchone()
        if row is None:
            return None
        session = Session(key_id=row["key_id"], csrf=row["csrf"], expires=datetime.fromisoformat(row["expires"]))
        if session.expires <= (at or _now()):
            self.close(session_id)
            return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._connect() as connection:
                connection.execute("DELETE FROM sessions WHERE digest = ?", (_digest(session_id),))
