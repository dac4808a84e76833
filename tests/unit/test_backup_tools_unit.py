"""The pure helpers of codeb-storage and codeb-backup: path whitelist, WAL ordering and prune choice,
backup_label and time parsing, and the canary SQL both tools must share."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeb_infra.remote import codeb_backup as backup
from codeb_infra.remote import codeb_storage as storage

UTC = datetime.UTC
SEG = 16 * 1024 * 1024


def test_both_tools_run_the_same_canary_summary() -> None:
    assert storage.CANARY_SUMMARY_SQL == backup.CANARY_SUMMARY_SQL
    assert storage.canary_summary_sql(7) == backup.canary_summary_sql(7)
    assert storage.parse_canary_summary("3|7|abc", 7) == backup.parse_canary_summary("3|7|abc\n", 7)
    with pytest.raises(ValueError):
        backup.canary_summary_sql("7; DROP TABLE x")


@pytest.mark.parametrize("rel, area", [
    ("wal/000000010000000000000002", "wal"),
    ("wal/000000010000000000000002.partial", "wal"),
    ("wal/00000002.history", "wal"),
    ("wal/000000010000000000000002.00000028.backup", "wal"),
    ("base/20261122T030000Z/base.tar.gz", "base"),
    ("base/20261122T030000Z/backup_manifest", "base"),
    ("base/20261122T030000Z/meta.json", "base"),
    ("dumps/shop_prod/20261122T030000Z.dump", "dumps"),
    ("dumps/a/20261122T030000Z.json", "dumps"),
    ("redis/20261122T030000Z.rdb", "redis"),
    ("redis/aof-latest.tar", "redis"),
    ("redis/aof-latest.json", "redis"),
])
def test_whitelist_accepts_what_the_storage_server_sends(rel: str, area: str) -> None:
    assert backup.area_of(rel) == area


@pytest.mark.parametrize("rel", [
    "", "wal", "wal/", "../wal/000000010000000000000002", "/srv/backup/wal/000000010000000000000002",
    "wal/000000010000000000000002/", "wal/0000000100000000000000020", "wal/00000001000000000000000a",
    "wal/000000010000000000000002.backup", "wal/0000002.history", "wal/000000010000000000000002\n",
    "base/20261122T030000Z/../../env/x", "base/2026-11-22/meta.json", "base/20261122T030000Z/postgresql.conf",
    "dumps/Shop/20261122T030000Z.dump", "dumps/" + "a" * 64 + "/20261122T030000Z.dump",
    "dumps/a/20261122T030000Z.sql", "dumps/a/b/20261122T030000Z.dump", "redis/aof-latest.rdb",
    "redis/dump.rdb", "env/app.env", "drills/history.jsonl", "wal/００００００01000000000000002",
    "base/２0261122T030000Z/meta.json",
])
def test_whitelist_refuses_everything_else(rel: str) -> None:
    with pytest.raises(backup.BadPath):
        backup.area_of(rel)


@given(st.text(alphabet="abz019AFZT_./-\n", max_size=60))
def test_an_accepted_path_never_escapes_its_area(rel: str) -> None:
    try:
        area = backup.area_of(rel)
    except backup.BadPath:
        return
    parts = rel.split("/")
    assert parts[0] == area and ".." not in parts and "" not in parts and "\n" not in rel


def test_storage_and_backup_agree_on_wal_names() -> None:
    for name in ("000000010000000000000002", "000000010000000000000002.partial", "00000003.history",
                 "000000010000000000000002.00000028.backup", "00000001000000000000002", "RECOVERYXLOG", "x"):
        assert bool(storage.WAL_NAME.fullmatch(name)) == bool(backup.WAL_NAME.fullmatch(name)), name


def test_wal_prune_ignores_the_timeline_and_keeps_history() -> None:
    names = [
        "000000010000000000000003", "000000010000000000000004", "000000010000000000000004.00000028.backup",
        "000000010000000000000005", "000000020000000000000004.partial", "000000020000000000000005",
        "00000002.history", "000000030000000000000002", "000000010000000100000000",
    ]
    removed = backup.wal_to_remove(names, keep_from="000000020000000000000005")
    assert removed == sorted([
        "000000010000000000000003", "000000010000000000000004", "000000010000000000000004.00000028.backup",
        "000000020000000000000004.partial", "000000030000000000000002",
    ])
    assert "00000002.history" not in removed and "000000010000000000000005" not in removed
    assert backup.wal_to_remove(names, keep_from="000000010000000000000001") == []


@given(st.integers(min_value=1, max_value=0xFFFF), st.integers(min_value=0, max_value=2**32 - 1))
def test_segment_names_round_trip_across_log_boundaries(timeline: int, number: int) -> None:
    name = backup.segment_name(timeline, number, SEG)
    assert backup.WAL_NAME.fullmatch(name)
    assert backup.segment_number(name, SEG) == number
    later = backup.segment_name(timeline, number + 1, SEG)
    assert backup.wal_position(later) > backup.wal_position(name)


def test_missing_segments_names_the_gap() -> None:
    archived = ["0000000100000000000000FE", "0000000100000000000000FF", "000000010000000100000001",
                "00000001000000000000FFFF.partial", "00000001.history"]
    assert backup.missing_segments(archived, "0000000100000000000000FE", SEG) == ["000000010000000100000000"]
    assert backup.missing_segments(archived[:2], "0000000100000000000000FE", SEG) == []
    assert backup.missing_segments([], "000000010000000000000002", SEG) == ["000000010000000000000002"]
    # segments of a later timeline continue the chain after a failover
    assert backup.missing_segments(["000000010000000000000002", "000000020000000000000003"],
                                   "000000010000000000000002", SEG) == []


def test_stale_never_picks_the_newest() -> None:
    now = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    day = datetime.timedelta(days=1)
    items = {"a": now - 30 * day, "b": now - 10 * day, "c": now - 2 * day, "d": now - 9 * day}
    assert backup.stale(items, now, 7 * day) == ["a", "b", "d"]
    assert backup.stale({"a": now - 30 * day, "b": now - 20 * day}, now, 7 * day) == ["a"]
    assert backup.stale({"only": now - 99 * day}, now, 7 * day) == []
    assert backup.stale({}, now, day) == []


LABEL = """START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
CHECKPOINT LOCATION: 0/2000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-22 03:00:00 UTC
LABEL: codeb-20261122T030000Z
START TIMELINE: 1
"""


def test_backup_label_gives_the_start_wal() -> None:
    assert backup.parse_backup_label(LABEL) == "000000010000000000000002"
    assert storage.parse_backup_label(LABEL) == "000000010000000000000002"
    with pytest.raises(ValueError):
        backup.parse_backup_label(LABEL.replace("START WAL", "STOP WAL"))


def test_stamps_and_times() -> None:
    assert backup.parse_stamp("20261122T030000Z") == datetime.datetime(2026, 11, 22, 3, tzinfo=UTC)
    assert backup.parse_time("2026-11-22T10:15:00Z") == datetime.datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
    assert backup.parse_time("2026-11-22T11:15:00+01:00") == datetime.datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
    for bad in ("2026-11-22T10:15:00", "yesterday", "2026-11-22 10:15"):
        with pytest.raises(ValueError):
            backup.parse_time(bad)


def test_small_parsers() -> None:
    assert backup.parse_lsn("1/2000028") == (1 << 32) | 0x2000028
    assert backup.conf_value("cp '/a b'/%f %p") == "'cp ''/a b''/%f %p'"
    info = storage.parse_info("# Persistence\r\nrdb_bgsave_in_progress:0\r\nrdb_last_bgsave_status:ok\r\n")
    assert info == {"rdb_bgsave_in_progress": "0", "rdb_last_bgsave_status": "ok"}
