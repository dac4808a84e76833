"""A project's data on the storage server, the backup configuration operations and the verdicts of
`codeb backup status`: given these facts, these commands, a no-op or a verdict."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import StringCommand

from codeb_infra.commands import redis as redis_commands
from codeb_infra.domain.data import STORAGE_SCHEDULES, ProjectData, backup_checks
from codeb_infra.domain.errors import CodebError
from codeb_infra.facts.files import TextFile
from codeb_infra.facts.postgres import (
    Database,
    PostgresDatabases,
    PostgresSettings,
    Setting,
)
from codeb_infra.facts.redis import RedisConfig
from codeb_infra.operations import postgres, redis, timers
from tests.unit.test_role_operations import Host, run

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ARCHIVE = {
    "wal_level": "replica",
    "archive_mode": "on",
    "archive_command": "/x archive-wal %p %f",
    "archive_timeout": "60",
}


@pytest.fixture(autouse=True)
def marker_file_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    def marker(verb: str):
        def inner(**kwargs: Any):
            target = kwargs.get("dest") or kwargs.get("service")
            flags = " ".join(f"{k}={v}" for k, v in sorted(kwargs.items()) if k in ("restarted", "daemon_reload"))
            yield StringCommand(verb, target, flags) if flags else StringCommand(verb, target)

        return inner

    monkeypatch.setattr(postgres.files.put, "_inner", marker("put"))
    monkeypatch.setattr(timers.files.put, "_inner", marker("put"))
    monkeypatch.setattr(timers.systemd.service, "_inner", marker("service"))


def test_project_data_names_are_sql_safe_and_distinct_per_project():
    data = ProjectData.of("my-shop")
    assert (data.database, data.role, data.redis_user, data.key_prefix) == ("my_shop", "my_shop", "my-shop", "my-shop:")
    assert data.master_env_on_storage == "/etc/codeb/secrets/projects/my-shop.env"
    assert data.comment == "codeb project my-shop"
    for bad in ("My-Shop", "a;drop", "../x", "postgres", "codeb", ""):
        with pytest.raises(CodebError):
            ProjectData.of(bad)


def test_database_is_created_until_it_belongs_to_its_owner_alone():
    kwargs = {"database_name": "shop", "owner": "shop", "comment": "codeb project shop"}
    done = Database("shop", "shop", "codeb project shop", public_connect=False)
    assert run(postgres.database, Host("storage", {PostgresDatabases: {"shop": done}}), **kwargs) == []
    for current in (
        {},
        {"shop": Database("shop", "shop", "codeb project shop", public_connect=True)},
        {"shop": Database("shop", "postgres", "codeb project shop", public_connect=False)},
    ):
        cmds = run(postgres.database, Host("storage", {PostgresDatabases: current}), **kwargs)
        assert len(cmds) == 1
        assert (
            "CREATE DATABASE shop OWNER shop" in cmds[0]
            and "REVOKE CONNECT, TEMPORARY ON DATABASE shop FROM PUBLIC" in cmds[0]
        )


def _live(values: dict[str, str], **changes: str) -> dict[str, Setting]:
    context = {"wal_level": "postmaster", "archive_mode": "postmaster"}
    merged = {**values, **changes}
    return {k: Setting(v, context.get(k, "sighup"), False) for k, v in merged.items()}


def _settings(host: Host) -> list[str]:
    return run(postgres.server_settings, host, values=ARCHIVE, conf_file="/etc/pg/conf.d/a.conf", unit="pg.service")


def _conf() -> str:
    lines = [f"{k} = '{v}'" for k, v in ARCHIVE.items()]
    return "\n".join(["# Written by codeb-infra: WAL archiving to the backup server. Changes are undone.", *lines])


def test_archive_settings_read_live_and_restart_only_for_start_time_settings():
    assert _settings(Host("storage", {TextFile: _conf(), PostgresSettings: _live(ARCHIVE)})) == []
    # Drift at runtime (ALTER SYSTEM, a hand edit) in a reloadable setting: the file is right, a reload fixes it.
    cmds = _settings(Host("storage", {TextFile: _conf(), PostgresSettings: _live(ARCHIVE, archive_timeout="0")}))
    assert len(cmds) == 1 and "-c 'ALTER SYSTEM RESET archive_timeout' -c 'SELECT pg_reload_conf()'" in cmds[0]
    cmds = _settings(Host("storage", {TextFile: None, PostgresSettings: _live(ARCHIVE, archive_mode="off")}))
    assert cmds[0] == "put /etc/pg/conf.d/a.conf" and "ALTER SYSTEM RESET archive_mode" in cmds[1]
    assert cmds[2] == "systemctl restart pg.service"
    pending = _live(ARCHIVE)
    pending["wal_level"] = Setting("replica", "postmaster", True)
    cmds = _settings(Host("storage", {TextFile: _conf(), PostgresSettings: pending}))
    assert cmds[-1] == "systemctl restart pg.service" and len(cmds) == 2


def test_redis_runtime_config_sets_only_what_drifted_with_the_password_from_its_file():
    values = {"appendonly": "yes", "appendfsync": "everysec"}
    assert run(redis.runtime_config, Host("storage", {RedisConfig: values}), values=values, password_file="/s/r") == []
    cmds = run(
        redis.runtime_config,
        Host("storage", {RedisConfig: {"appendonly": "no", "appendfsync": "everysec"}}),
        values=values,
        password_file="/s/r",
    )
    assert cmds == [
        'REDISCLI_AUTH="$(cat /s/r )" redis-cli --no-auth-warning -h 127.0.0.1 -p 6379 '
        "CONFIG SET appendonly yes | grep -qx OK"
    ]


def test_redis_config_fact_pairs_names_and_values():
    assert RedisConfig().process(["appendonly", "yes", "appendfsync", "everysec"]) == {
        "appendonly": "yes",
        "appendfsync": "everysec",
    }
    assert RedisConfig().process(["NOAUTH Authentication required."]) == {}


def test_postgres_facts_parse_rows():
    rows = PostgresDatabases().process(["postgres|postgres||t", "shop|shop|codeb project shop|f"])
    assert rows["shop"] == Database("shop", "shop", "codeb project shop", False) and rows["postgres"].public_connect
    live = PostgresSettings().process(
        ["archive_command|/x archive-wal %p %f|sighup|f", "wal_level|replica|postmaster|t"]
    )
    assert live["archive_command"].value == "/x archive-wal %p %f" and live["wal_level"].pending_restart


def test_timer_units_are_written_once_and_the_timer_enabled():
    schedule = STORAGE_SCHEDULES[1]
    first = run(timers.job, Host("storage", {}), schedule=schedule, command="/t dump")
    assert first == [
        "put /etc/systemd/system/codeb-pg-dump.service",
        "put /etc/systemd/system/codeb-pg-dump.timer",
        "service codeb-pg-dump.timer daemon_reload=True restarted=True",
    ]
    service = timers.render(
        "job.service.j2",
        name=schedule.name,
        description=schedule.description,
        user="postgres",
        command="/t dump",
        after="",
        on_calendar=schedule.on_calendar,
        jitter="60",
    )
    timer = timers.render(
        "job.timer.j2",
        name=schedule.name,
        description=schedule.description,
        user="postgres",
        command="/t dump",
        after="",
        on_calendar=schedule.on_calendar,
        jitter="60",
    )
    assert "OnCalendar=*-*-* 03:00:00" in timer and "Persistent=true" in timer and "User=postgres" in service

    class Facts(Host):
        def get_fact(self, cls: type, *args: Any, **kwargs: Any) -> Any:
            return (service if kwargs["path"].endswith(".service") else timer).rstrip("\n")

    assert run(timers.job, Facts("storage", {}), schedule=schedule, command="/t dump") == [
        "service codeb-pg-dump.timer daemon_reload=False restarted=False"
    ]


def test_acl_script_lists_each_project_user_with_its_prefix_only(tmp_path: Path):
    (tmp_path / "users").mkdir()
    (tmp_path / "admin").write_text("adminpass")
    (tmp_path / "users" / "shop.password").write_text("s1")
    (tmp_path / "users" / "blog.password").write_text("b1")
    acl, admin, users = str(tmp_path / "acl"), str(tmp_path / "admin"), str(tmp_path / "users")
    current = str(redis_commands.acl_current(path=acl, password_file=admin, users_dir=users))
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
    assert subprocess.run(["bash", "-c", current], capture_output=True, text=True).stdout.strip() == "stale"
    subprocess.run(
        ["bash", "-c", str(redis_commands.write_acl(path=acl, password_file=admin, users_dir=users, group=group))],
        check=True,
    )
    lines = Path(acl).read_text().splitlines()
    assert lines[0].startswith("user default reset on #") and "adminpass" not in Path(acl).read_text()
    assert lines[1].startswith("user blog reset on #") and lines[1].endswith(
        "~blog:* &blog:* +@all -@admin -@dangerous"
    )
    assert lines[2].startswith("user shop reset on #") and "~shop:*" in lines[2] and "~*" not in lines[2]
    assert oct(Path(acl).stat().st_mode & 0o777) == "0o640"
    assert subprocess.run(["bash", "-c", current], capture_output=True, text=True).stdout.strip() == "current"
    (tmp_path / "users" / "shop.password").write_text("changed")
    assert subprocess.run(["bash", "-c", current], capture_output=True, text=True).stdout.strip() == "stale"


def _store(**changes: Any) -> dict[str, Any]:
    fresh = (NOW - timedelta(hours=1)).isoformat()
    store = {
        "base": {"label": "20261122T020000Z", "finished_at": fresh, "size": 5_000_000},
        "wal": {"newest": "000000010000000000000009", "newest_at": fresh, "count": 9, "bytes": 9 << 24},
        "dumps": {"shop": {"finished_at": fresh, "size": 1000}},
        "rdb": {"finished_at": (NOW - timedelta(minutes=20)).isoformat(), "size": 100},
        "drill": {
            "finished_at": fresh,
            "ok": True,
            "failures": [],
            "recovery_point_seconds": 3.2,
            "recovery_time_seconds": 9.0,
        },
    }
    return {**store, **changes}


def _storage(**archiver: Any) -> dict[str, Any]:
    return {
        "archiver": {
            "last_archived_wal": "000000010000000000000009",
            "last_archived_time": NOW.isoformat(),
            "failed_count": 0,
            "last_failed_time": None,
            **archiver,
        },
        "ready": {"count": 0, "oldest_age_seconds": None},
        "redis": {"aof_enabled": True, "aof_last_write_status": "ok", "rdb_last_bgsave_status": "ok"},
    }


def _failing(checks: list) -> list[str]:
    return [c.name for c in checks if not c.ok]


def test_fresh_backups_and_a_passed_drill_are_all_green():
    assert _failing(backup_checks(_storage(), _store(), ["shop"], NOW, 60)) == []


def test_each_stale_missing_or_failing_piece_is_named():
    old = (NOW - timedelta(hours=30)).isoformat()
    assert _failing(backup_checks(_storage(), _store(base={"finished_at": old, "label": "x"}), ["shop"], NOW, 60)) == [
        "base backup"
    ]
    assert _failing(backup_checks(_storage(), _store(), ["shop", "blog"], NOW, 60)) == ["dump blog"]
    assert _failing(backup_checks(_storage(), _store(rdb=None), ["shop"], NOW, 60)) == ["Redis RDB"]
    failed = {"finished_at": NOW.isoformat(), "ok": False, "failures": ["dump shop: canary checksum differs"]}
    checks = backup_checks(_storage(), _store(drill=failed), ["shop"], NOW, 60)
    assert _failing(checks) == ["restore drill"] and "canary checksum differs" in checks[-1].detail
    failing = _storage(
        last_failed_time=(NOW + timedelta(seconds=5)).isoformat(),
        failed_count=3,
        last_failed_wal="00000001000000000000000A",
    )
    assert _failing(backup_checks(failing, _store(), ["shop"], NOW, 60)) == ["WAL archiving"]
    backlog = {**_storage(), "ready": {"count": 4, "oldest_age_seconds": 500.0}}
    assert _failing(backup_checks(backlog, _store(), ["shop"], NOW, 60)) == ["WAL waiting to be archived"]
    assert _failing(backup_checks(_storage(), None, ["shop"], NOW, 60)) == ["backup server"]
    assert "storage server" in _failing(backup_checks(None, _store(), ["shop"], NOW, 60))
    no_aof = {**_storage(), "redis": {"aof_enabled": False}}
    assert _failing(backup_checks(no_aof, _store(), ["shop"], NOW, 60)) == ["Redis persistence"]
