"""The audit chain and API keys, on files in a temporary directory."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from codeb_infra.api.audit import AuditLog, Head, redact, row_hash
from codeb_infra.api.keys import KeyRejected, KeyStore, Role, make_secret, now
from codeb_infra.domain.errors import CodebError


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(str(tmp_path / "audit.db"))
    for n in range(5):
        audit.append(
            tool="promote",
            project=f"p{n}",
            env="production",
            outcome="allowed",
            status=200,
            params={"project": f"p{n}"},
        )
    return audit


def raw(log: AuditLog) -> sqlite3.Connection:
    """The database as someone with file access would open it, triggers dropped."""
    connection = sqlite3.connect(log.path, isolation_level=None)
    connection.execute("DROP TRIGGER audit_no_update")
    connection.execute("DROP TRIGGER audit_no_delete")
    return connection


def restore_triggers(log: AuditLog) -> None:
    AuditLog(log.path)  # the schema script puts the triggers back, as a tamperer would


def test_a_fresh_chain_verifies_and_is_append_only(log: AuditLog) -> None:
    assert log.verify() is None
    connection = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("UPDATE audit SET outcome = 'denied' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("DELETE FROM audit WHERE seq = 2")
    assert [r["seq"] for r in log.rows()] == [1, 2, 3, 4, 5]


def test_an_edited_row_is_named(log: AuditLog) -> None:
    raw(log).execute("UPDATE audit SET outcome = 'denied' WHERE seq = 3")
    restore_triggers(log)
    assert log.verify() == "row 3 was changed after it was written (its hash does not match its content)"


def test_a_deleted_row_is_named(log: AuditLog) -> None:
    raw(log).execute("DELETE FROM audit WHERE seq = 3")
    restore_triggers(log)
    assert log.verify() == "row 3 is missing (next row is 4)"


def test_reordered_rows_are_caught(log: AuditLog) -> None:
    connection = raw(log)
    two, three = (connection.execute(f"SELECT project FROM audit WHERE seq = {n}").fetchone()[0] for n in (2, 3))
    connection.execute("UPDATE audit SET project = ? WHERE seq = 2", (three,))
    connection.execute("UPDATE audit SET project = ? WHERE seq = 3", (two,))
    restore_triggers(log)
    assert log.verify() is not None and log.verify().startswith("row 2 ")


def test_dropped_triggers_are_reported(log: AuditLog) -> None:
    raw(log)
    assert "triggers" in (log.verify() or "")


def test_a_whole_rewritten_chain_is_caught_by_the_shipped_head(log: AuditLog) -> None:
    shipped = log.head()
    assert shipped == Head(5, log.rows()[-1]["hash"])
    connection = raw(log)
    connection.row_factory = sqlite3.Row
    connection.execute("UPDATE audit SET outcome = 'denied' WHERE seq = 2")
    prev = connection.execute("SELECT hash FROM audit WHERE seq = 1").fetchone()[0]
    for row in connection.execute("SELECT * FROM audit WHERE seq >= 2 ORDER BY seq").fetchall():
        digest = row_hash(prev, dict(row))
        connection.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, row["seq"]))
        prev = digest
    restore_triggers(log)
    assert log.verify() is None  # consistent on its own...
    assert (
        log.verify([shipped])
        == "row 5 differs from the head hash shipped to the backup server (the chain was rewritten)"
    )


def test_secrets_and_keys_never_reach_the_log() -> None:
    kept = redact(
        {
            "project": "shop",
            "env": "production",
            "password": "hunter2",
            "env_values": {"A": "1"},
            "note": "codeb_admin_" + "x" * 43,
            "nested": [{"api_key": "k"}],
        }
    )
    assert kept == {
        "project": "shop",
        "env": "production",
        "password": "[redacted]",
        "env_values": "[redacted]",
        "note": "[redacted]",
        "nested": [{"api_key": "[redacted]"}],
    }


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    make_secret(str(tmp_path / "secrets" / "api.secret"))
    assert (tmp_path / "secrets" / "api.secret").stat().st_mode & 0o777 == 0o600
    return KeyStore(str(tmp_path / "keys.db"), str(tmp_path / "secrets" / "api.secret"))


def test_a_key_authenticates_with_its_servers_role_and_scope(store: KeyStore, tmp_path: Path) -> None:
    record, key = store.create(role=Role.DEV, projects=("shop",), name="ci shop")
    assert key.startswith("codeb_dev_")
    found = store.authenticate(key)
    assert (found.id, found.role, found.projects) == (record.id, Role.DEV, ("shop",))
    assert found.covers("shop") and not found.covers("blog") and found.may(Role.VIEW) and not found.may(Role.ADMIN)
    assert key not in (tmp_path / "keys.db").read_bytes().decode("latin-1")
    assert key not in str([k.as_dict() for k in store.list()])
    # The prefix is not trusted: a dev key renamed admin is a different, unknown key.
    with pytest.raises(KeyRejected, match="unknown"):
        store.authenticate(key.replace("codeb_dev_", "codeb_admin_"))


def test_wrong_revoked_and_expired_keys_are_refused(store: KeyStore) -> None:
    record, key = store.create(role=Role.VIEW, expires_days=1)
    with pytest.raises(KeyRejected, match="unknown"):
        store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B"))
    with pytest.raises(KeyRejected, match="no API key"):
        store.authenticate(None)
    with pytest.raises(KeyRejected, match="expired"):
        store.authenticate(key, at=now() + timedelta(days=2))
    store.revoke(record.id)
    with pytest.raises(KeyRejected, match="revoked"):
        store.authenticate(key)
    with pytest.raises(CodebError, match="no API key with id"):
        store.revoke("k00000000")
    with pytest.raises(CodebError, match="invalid project name"):
        store.create(role=Role.DEV, projects=("../x",))
