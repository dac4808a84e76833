"""Where the API keeps its keys, audit log, dashboard sessions, secret and inventory on the app server (overridable by
environment variables, which the systemd unit and the tests set)."""

from __future__ import annotations

import os
from dataclasses import dataclass

KEYS_DB = "/var/lib/codeb/keys.db"
AUDIT_DB = "/var/lib/codeb/audit.db"
SESSIONS_DB = "/var/lib/codeb/sessions.db"
KEY_SECRET = "/etc/codeb/secrets/api-keys.secret"
INVENTORY = "/etc/codeb/api/inventory.py"
MAX_BODY = 2 * 1024 * 1024


@dataclass(frozen=True)
class ApiPaths:
    keys_db: str = KEYS_DB
    audit_db: str = AUDIT_DB
    key_secret: str = KEY_SECRET
    inventory: str = INVENTORY
    sessions_db: str = SESSIONS_DB

    @classmethod
    def from_environ(cls) -> ApiPaths:
        return cls(
            keys_db=os.environ.get("CODEB_API_KEYS_DB", KEYS_DB),
            audit_db=os.environ.get("CODEB_API_AUDIT_DB", AUDIT_DB),
            key_secret=os.environ.get("CODEB_API_KEY_SECRET", KEY_SECRET),
            inventory=os.environ.get("CODEB_API_INVENTORY", INVENTORY),
            sessions_db=os.environ.get("CODEB_API_SESSIONS_DB", SESSIONS_DB),
        )
