"""The pure helpers of codeb-storage and codeb-backup (path whitelist, WAL ordering and prune choice,
backup_label and time parsing, the canary SQL both tools share) and the tools as a role installs them."""

from __future__ import annotations

import ast
import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeb_infra import remote
from codeb_infra.remote import codeb_backup_archive as backup
from codeb_infra.remote import codeb_backup_restore as restore
from codeb_infra.remote import codeb_backup_scratch as scratch
from codeb_infra.remote import codeb_common as common
from codeb_infra.remote import codeb_storage as storage

UTC = datetime.UTC
SEG = 16 * 1024 * 1024
SERVER_PYTHON = "/usr/bin/python3"  # Debian's own interpreter, the one the servers run the tools with


def test_canary_summary() -> None:
    assert common.canary_summary_sql(7).endswith("WHERE id <= 7")
    assert common.parse_canary_summary("3|7|abc\n", "7") == {"last_id": 7, "rows": 3, "checksum": "abc"}
    with pytest.raises(ValueError):
        common.canary_summary_sql("7; DROP TABLE x")


def test_the_shared_helpers_exist_once() -> None:
    """Both tools use codeb_common's copies: no module of either defines its own."""
    shared = {
        name
        for name, value in vars(common).items()
        if not name.startswith("_") and getattr(value, "__module__", common.__name__) == common.__name__
    }
    for tool in remote.PACKAGED_TOOLS:
        for source, _dest in remote.tool_files(tool)[1:]:
            if source.name in ("__init__.py", "codeb_common.py"):
                continue
            tree = ast.parse(source.read_text())
            defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}
            defined |= {
                target.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            assert not defined & shared, f"{source.name} redefines {sorted(defined & shared)}"


@pytest.mark.parametrize("tool", remote.PACKAGED_TOOLS)
def test_a_tool_runs_from_its_installed_files_alone(tool: str, tmp_path: Path) -> None:
    """Laid out as the role installs it, with nothing of this repository importable (-I: isolated,
    no script directory on sys.path unless the entry script puts it there)."""
    for source, dest in remote.tool_files(tool):
        (tmp_path / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, tmp_path / dest)
    result = subprocess.run(
        [SERVER_PYTHON, "-I", str(tmp_path / tool), "--help"],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: {tool}" in result.stdout
    # every module the tool's modules import relatively is installed with it
    installed = {dest.split("/")[-1].removesuffix(".py") for _source, dest in remote.tool_files(tool)[1:]}
    for source, _dest in remote.tool_files(tool)[1:]:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                names = [node.module] if node.module else [alias.name for alias in node.names]
                assert set(names) <= installed, f"{source.name} imports {names}, not installed with {tool}"


@pytest.mark.parametrize(
    "rel, area",
    [
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
    ],
)
def test_whitelist_accepts_what_the_storage_server_sends(rel: str, area: str) -> None:
    assert backup.area_of(rel) == area


@pytest.mark.parametrize(
    "rel",
    [
        "",
        "wal",
        "wal/",
        "../wal/000000010000000000000002",
        "/srv/backup/wal/000000010000000000000002",
        "wal/000000010000000000000002/",
        "wal/0000000100000000000000020",
        "wal/00000001000000000000000a",
        "wal/000000010000000000000002.backup",
        "wal/0000002.history",
        "wal/000000010000000000000002\n",
        "base/20261122T030000Z/../../env/x",
        "base/2026-11-22/meta.json",
        "base/20261122T030000Z/postgresql.conf",
        "dumps/Shop/20261122T030000Z.dump",
        "dumps/" + "a" * 64 + "/20261122T030000Z.dump",
        "dumps/a/20261122T030000Z.sql",
        "dumps/a/b/20261122T030000Z.dump",
        "redis/aof-latest.rdb",
        "redis/dump.rdb",
        "env/app.env",
        "drills/history.jsonl",
        "wal/００００００01000000000000002",
        "base/２0261122T030000Z/meta.json",
    ],
)
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


def test_wal_names() -> None:
    for name in (
        "000000010000000000000002",
        "000000010000000000000002.partial",
        "00000003.history",
        "000000010000000000000002.00000028.backup",
    ):
        assert common.WAL_NAME.fullmatch(name), name
    for name in (
        "00000001000000000000002",
        "RECOVERYXLOG",
        "x",
        "000000010000000000000002.backup",
        "0000000100000000000000020",
    ):
        assert not common.WAL_NAME.fullmatch(name), name


def test_wal_prune_ignores_the_timeline_and_keeps_history() -> None:
    names = [
        "000000010000000000000003",
        "000000010000000000000004",
        "000000010000000000000004.00000028.backup",
        "000000010000000000000005",
        "000000020000000000000004.partial",
        "000000020000000000000005",
        "00000002.history",
        "000000030000000000000002",
        "000000010000000100000000",
    ]
    removed = backup.wal_to_remove(names, keep_from="000000020000000000000005")
    assert removed == sorted(
        [
            "000000010000000000000003",
            "000000010000000000000004",
            "000000010000000000000004.00000028.backup",
            "000000020000000000000004.partial",
            "000000030000000000000002",
        ]
    )
    assert "00000002.history" not in removed and "000000010000000000000005" not in removed
    assert backup.wal_to_remove(names, keep_from="000000010000000000000001") == []


@given(st.integers(min_value=1, max_value=0xFFFF), st.integers(min_value=0, max_value=2**32 - 1))
def test_segment_names_round_trip_across_log_boundaries(timeline: int, number: int) -> None:
    name = backup.segment_name(timeline, number, SEG)
    assert common.WAL_NAME.fullmatch(name)
    assert backup.segment_number(name, SEG) == number
    later = backup.segment_name(timeline, number + 1, SEG)
    assert backup.wal_position(later) > backup.wal_position(name)


def test_missing_segments_names_the_gap() -> None:
    archived = [
        "0000000100000000000000FE",
        "0000000100000000000000FF",
        "000000010000000100000001",
        "00000001000000000000FFFF.partial",
        "00000001.history",
    ]
    assert backup.missing_segments(archived, "0000000100000000000000FE", SEG) == ["000000010000000100000000"]
    assert backup.missing_segments(archived[:2], "0000000100000000000000FE", SEG) == []
    assert backup.missing_segments([], "000000010000000000000002", SEG) == ["000000010000000000000002"]
    # segments of a later timeline continue the chain after a failover
    assert (
        backup.missing_segments(
            ["000000010000000000000002", "000000020000000000000003"], "000000010000000000000002", SEG
        )
        == []
    )


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
    assert common.parse_backup_label(LABEL) == "000000010000000000000002"
    with pytest.raises(ValueError):
        common.parse_backup_label(LABEL.replace("START WAL", "STOP WAL"))


def test_stamps_and_times() -> None:
    assert common.parse_stamp("20261122T030000Z") == datetime.datetime(2026, 11, 22, 3, tzinfo=UTC)
    assert backup.parse_time("2026-11-22T10:15:00Z") == datetime.datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
    assert backup.parse_time("2026-11-22T11:15:00+01:00") == datetime.datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
    for bad in ("2026-11-22T10:15:00", "yesterday", "2026-11-22 10:15"):
        with pytest.raises(ValueError):
            backup.parse_time(bad)


def test_small_parsers() -> None:
    assert restore.parse_lsn("1/2000028") == (1 << 32) | 0x2000028
    assert scratch.conf_value("cp '/a b'/%f %p") == "'cp ''/a b''/%f %p'"
    info = storage.parse_info("# Persistence\r\nrdb_bgsave_in_progress:0\r\nrdb_last_bgsave_status:ok\r\n")
    assert info == {"rdb_bgsave_in_progress": "0", "rdb_last_bgsave_status": "ok"}


def test_the_drill_history_keeps_the_last_drills_oldest_first_with_their_recovery_figures(tmp_path: Path) -> None:
    from codeb_infra.remote import codeb_backup_store as store

    assert store._drill_history(str(tmp_path)) == []
    (tmp_path / "drills").mkdir()
    lines = [
        f'{{"started_at": "s{i}", "finished_at": "f{i}", "ok": {str(i % 2 == 0).lower()}, '
        f'"recovery_point_seconds": {i}.5, "recovery_time_seconds": 3, "databases": {{"shop": {{}}}}}}'
        for i in range(store.DRILL_HISTORY + 3)
    ]
    (tmp_path / "drills" / "history.jsonl").write_text("\n".join([*lines[:2], "not json", *lines[2:]]) + "\n")
    history = store._drill_history(str(tmp_path))
    assert len(history) == store.DRILL_HISTORY and history[-1]["finished_at"] == f"f{store.DRILL_HISTORY + 2}"
    assert history[0] == {
        "started_at": "s3",
        "finished_at": "f3",
        "ok": False,
        "recovery_point_seconds": 3.5,
        "recovery_time_seconds": 3,
    }
