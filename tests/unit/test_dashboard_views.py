"""The dashboard's pure pieces: versions, grace time left, a projects-page row from tool answers,
the drill chart, the audit filters, and the session store's expiry and CSRF comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codeb_infra.api.dashboard import Answer, audit_matches, chart, grace_left, image_tag, project_row, release_version
from codeb_infra.api.sessions import SessionStore

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("registry.example.com:5000/team/app:1.2", "1.2"),
        ("localhost/codeb-test-app:v2", "v2"),
        ("app", "latest"),
        ("app:3@sha256:" + "a" * 64, "3"),
        (None, "—"),
    ],
)
def test_image_tag(image: str | None, tag: str) -> None:
    assert image_tag(image) == tag


def test_a_release_is_named_by_the_apps_own_version_first() -> None:
    assert release_version({"app_version": "2.4.1", "image": "app:v9"}) == "2.4.1"
    assert release_version({"app_version": None, "image": "app:v9"}) == "v9"
    assert release_version(None) == "—"


def test_grace_left() -> None:
    assert grace_left((NOW + timedelta(minutes=12, seconds=30)).isoformat(), NOW) == "12m 30s"
    assert grace_left((NOW + timedelta(hours=2, minutes=5)).isoformat(), NOW) == "2h 5m"
    assert grace_left((NOW - timedelta(seconds=1)).isoformat(), NOW) == "ended"
    assert grace_left(None, NOW) is None


def _status(active: str, green_state: str = "deployed", container: str = "running") -> Answer:
    slots = {
        "blue": {
            "state": "active" if active == "blue" else "grace",
            "release": 1,
            "image": "app:v1",
            "container": container,
            "matches_record": True,
        },
        "green": {
            "state": "active" if active == "green" else green_state,
            "release": 2,
            "image": "app:v2",
            "container": "running",
            "matches_record": True,
        },
    }
    return Answer(200, result={"active_slot": active, "preview_domain": "shop-preview.codeb.test", "slots": slots})


RELEASES = Answer(
    200,
    result=[
        {"number": 1, "image": "app:v1", "app_version": None, "actor": "ci", "time": "2026-12-01T09:00:00+00:00"},
        {
            "number": 2,
            "image": "app:v2",
            "app_version": "2.0.0",
            "actor": "dev key",
            "time": "2026-12-01T09:30:00+00:00",
        },
    ],
)
ENTRY = {"project": "shop", "env": "production", "domain": "shop.codeb.test", "active_slot": "blue"}


def test_a_projects_row_shows_live_and_preview_releases_with_versions_and_the_last_deploy() -> None:
    row = project_row(ENTRY, _status("blue"), RELEASES)
    assert row["live"] == {"slot": "blue", "number": 1, "version": "v1"}
    assert row["preview"] == {"slot": "green", "number": 2, "version": "2.0.0"}
    assert row["health"] == "healthy" and row["last"]["actor"] == "dev key"
    assert row["preview_domain"] == "shop-preview.codeb.test"


def test_a_projects_row_without_preview_or_with_a_stopped_live_container() -> None:
    row = project_row(ENTRY, _status("green", container="stopped"), RELEASES)
    assert row["live"]["number"] == 2 and row["preview"] is None  # blue is in grace, not a preview
    assert project_row(ENTRY, _status("blue", container="stopped"), RELEASES)["health"] == "unhealthy"


def test_a_projects_row_keeps_the_apis_error() -> None:
    row = project_row(ENTRY, Answer(403, error="this key is limited to blog; not shop"), Answer(403, error="x"))
    assert row["error"] == "this key is limited to blog; not shop" and row["health"] == "unknown"


def test_the_drill_chart_scales_each_series_to_its_peak() -> None:
    drills = [
        {"finished_at": "t1", "recovery_point_seconds": 2.0, "recovery_time_seconds": 10.0},
        {"finished_at": "t2", "recovery_point_seconds": 4.0, "recovery_time_seconds": 5.0},
        {"finished_at": None, "recovery_point_seconds": 99.0},  # a drill that never finished
    ]
    drawn = chart(drills, width=100, height=110)
    assert drawn["count"] == 2 and drawn["peaks"] == {"recovery_point_seconds": 4.0, "recovery_time_seconds": 10.0}
    assert drawn["points"]["recovery_point_seconds"] == "0.0,60.0 100.0,10.0"
    assert drawn["points"]["recovery_time_seconds"] == "0.0,10.0 100.0,60.0"
    assert chart([])["count"] == 0


def test_audit_filters() -> None:
    row = {"actor": "dashboard", "key_name": "ci deploy", "key_id": "k12ab", "outcome": "denied"}
    assert audit_matches(row, "", "")
    assert audit_matches(row, "CI", "denied") and audit_matches(row, "k12", "") and audit_matches(row, "dash", "")
    assert not audit_matches(row, "", "allowed") and not audit_matches(row, "someone", "")


def test_sessions_expire_and_close(tmp_path: Path) -> None:
    store = SessionStore(str(tmp_path / "s" / "sessions.db"), hours=1)
    session_id, session = store.open("k1", at=NOW)
    assert store.find(session_id, at=NOW + timedelta(minutes=59)) == session
    assert store.find(session_id, at=NOW + timedelta(hours=1)) is None
    assert store.find(session_id, at=NOW) is None  # the expired one was removed
    session_id, session = store.open("k1")
    store.close(session_id)
    assert store.find(session_id) is None and store.find(None) is None and store.find("x" * 500) is None


def test_the_csrf_token_must_match_exactly(tmp_path: Path) -> None:
    _, session = SessionStore(str(tmp_path / "sessions.db")).open("k1")
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None) and not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf[:-1]) and not session.csrf_matches(session.csrf + "x")


def _backups_page(store: dict[str, object]) -> str:
    from types import SimpleNamespace

    from codeb_infra.api.dashboard import _templates

    drills = store.get("drills", [])
    role = SimpleNamespace(value="admin")
    viewer = SimpleNamespace(admin=True, record=SimpleNamespace(name="ops", role=role, projects=()))
    answer = Answer(
        200,
        result={
            "ok": False,
            "checks": [{"name": "wal", "ok": False, "detail": "late", "at": None, "size": None}],
            "store": store,
        },
    )
    return (
        _templates()
        .get_template("backups.html")
        .render(
            viewer=viewer,
            csrf="t",
            page="backups",
            answer=answer,
            drills=drills,
            chart=chart(drills),  # type: ignore[arg-type]
        )
    )


def test_the_backups_page_renders_what_the_backup_server_holds_and_the_drill_chart() -> None:
    store = {
        "base": {"label": "base-20261201", "finished_at": "2026-12-01T09:00:00+00:00", "size": 3 * 1024 * 1024},
        "wal": {
            "count": 12,
            "bytes": 12 * 16 * 1024 * 1024,
            "newest": "000000010000000000000012",
            "newest_at": "2026-12-01T09:59:00+00:00",
        },
        "dumps": {"shop": {"finished_at": "2026-12-01T03:00:00+00:00", "size": 2048}},
        "rdb": {"finished_at": "2026-12-01T09:30:00+00:00", "size": 100},
        "drills": [
            {
                "finished_at": "2026-11-30T04:00:00+00:00",
                "ok": True,
                "recovery_point_seconds": 1.5,
                "recovery_time_seconds": 20.0,
            },
            {
                "finished_at": "2026-12-01T04:00:00+00:00",
                "ok": False,
                "recovery_point_seconds": 3.0,
                "recovery_time_seconds": 25.0,
            },
        ],
    }
    page = _backups_page(store)
    assert "base-20261201, 2026-12-01 09:00:00 UTC, 3.0 MiB" in page and "12 files (192.0 MiB)" in page
    assert "shop: 2026-12-01 03:00:00 UTC (2.0 KiB)" in page and 'id="drill-chart"' in page
    assert page.count('class="drill ') == 2 and "FAILED" in page and "peak 25.0 s" in page


def test_the_backups_page_renders_when_the_backup_server_could_not_be_asked() -> None:
    page = _backups_page({})
    assert 'id="base">none' in page and "No drill has run yet." in page and 'id="drill-chart"' not in page
