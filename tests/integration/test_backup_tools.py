"""codeb-storage and codeb-backup for real: a PostgreSQL 15 cluster archiving through the tool, a
password-protected redis-server, backups shipped into a local backup root, and restore drills and
point-in-time restores in scratch processes. Checked with psql, redis-cli, tarfile and hashlib, not
with the tools' own reports alone."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backup_lab import PG_BIN, BackupLab

pytestmark = [
    pytest.mark.integration,
    pytest.mark.needs(os.geteuid() == 0, "root (creates a test user and runs PostgreSQL as it)"),
    pytest.mark.needs(
        bool((PG_BIN / "initdb").exists() and shutil.which("redis-server")),
        "postgresql-15 and redis-server (scripts/setup.sh installs them)",
    ),
]

SEGMENT = re.compile(r"[0-9A-F]{24}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def newest(directory: Path, suffix: str) -> Path:
    return max(directory.glob(f"*{suffix}"))


def history(lab: BackupLab) -> list[dict]:
    return [json.loads(line) for line in (lab.root / "drills" / "history.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def lab() -> Iterator[BackupLab]:
    opened = BackupLab()
    try:
        opened.start()
        yield opened
    finally:
        opened.stop()


@pytest.fixture(scope="module")
def backed_up(lab: BackupLab) -> dict[str, str]:
    """Two project databases' worth of data, one base backup, later WAL, dumps and a Redis snapshot."""
    lab.psql("postgres", "CREATE DATABASE appdb")
    lab.psql("postgres", "CREATE DATABASE otherdb")
    lab.psql("postgres", "COMMENT ON DATABASE appdb IS 'codeb project app'")
    lab.psql(
        "appdb",
        "CREATE TABLE items (id serial PRIMARY KEY, note text); "
        "INSERT INTO items (note) SELECT 'row ' || g FROM generate_series(1, 3) g",
    )
    lab.psql("otherdb", "CREATE TABLE t (x int)")
    ok(lab.storage("base-backup"))
    lab.psql("appdb", "INSERT INTO items (note) VALUES ('after base 1'), ('after base 2')")
    lab.switch_wal()
    ok(lab.storage("dump"))
    for i in range(20):
        lab.redis_cli("SET", f"key:{i}", f"value {i}")
    ok(lab.storage("redis-snapshot", root=True))
    lab.switch_wal()
    return {"base": newest(lab.root / "base", "").name}


# ---------------------------------------------------------------- put and archive-wal


@pytest.mark.parametrize(
    "rel",
    [
        "../etc/passwd",
        "/etc/passwd",
        "wal/../../x",
        "env/secret",
        "wal/00000001000000000000000G",
        "wal/000000010000000000000001\n",
        "wal/sub/000000010000000000000001",
        "base/20261122T030000Z/other",
        "base/latest/meta.json",
        "dumps/Bad-Name/20261122T030000Z.dump",
        "dumps/app/20261122T030000Z.sql",
        "redis/aof-latest.rdb",
        "drills/history.jsonl",
        "",
    ],
)
def test_put_refuses_paths_outside_the_whitelist(lab: BackupLab, tmp_path: Path, rel: str) -> None:
    root = tmp_path / "root"
    result = subprocess.run(
        ["python3", lab.backup_tool, "--root", str(root), "put", rel, "0" * 64],
        input=b"data",
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result
    assert b"refusing" in result.stderr
    assert not root.exists() or not any(root.rglob("*"))


def test_put_checks_sha_and_never_replaces_wal(lab: BackupLab, tmp_path: Path) -> None:
    root = tmp_path / "root"

    def put(rel: str, data: bytes, digest: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["python3", lab.backup_tool, "--root", str(root), "put", rel, digest, *extra],
            input=data,
            capture_output=True,
            timeout=30,
            check=False,
        )

    good = hashlib.sha256(b"segment").hexdigest()
    cut = put("wal/000000010000000000000007", b"segm", good)
    assert cut.returncode == 4 and not (root / "wal" / "000000010000000000000007").exists()
    assert put("wal/000000010000000000000007", b"segment", good).returncode == 0
    assert oct((root / "wal").stat().st_mode & 0o777) == "0o750"
    assert oct((root / "wal" / "000000010000000000000007").stat().st_mode & 0o777) == "0o640"
    other = hashlib.sha256(b"other").hexdigest()
    assert put("wal/000000010000000000000007", b"other", other, "--replace").returncode == 2
    assert put("redis/aof-latest.json", b"segment", good).returncode == 0
    assert put("redis/aof-latest.json", b"other", other).returncode == 3
    assert put("redis/aof-latest.json", b"other", other, "--replace").returncode == 0
    assert (root / "redis" / "aof-latest.json").read_bytes() == b"other"
    assert not list(root.rglob(".tmp-*"))


def test_archive_wal_is_idempotent_and_refuses_different_content(lab: BackupLab, tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = dict(lab.env(), CODEB_SHIP=lab.ship_command(root))
    name = "000000010000000000000042"
    segment = tmp_path / name
    segment.write_bytes(os.urandom(4096))

    def archive(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["python3", lab.storage_tool, "archive-wal", str(path), name],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )

    ok(archive(segment))
    stored = root / "wal" / name
    assert sha256(stored) == sha256(segment)
    again = ok(archive(segment))
    assert "already stored" in again.stdout
    changed = tmp_path / "changed"
    changed.write_bytes(os.urandom(4096))
    refused = archive(changed)
    assert refused.returncode != 0
    assert "different content" in refused.stderr
    assert sha256(stored) == sha256(segment)


def test_live_cluster_archives_segments_through_the_tool(lab: BackupLab) -> None:
    segment = lab.switch_wal()
    stored = lab.root / "wal" / segment
    assert stored.stat().st_size == 16 * 1024 * 1024
    archiver = lab.psql("postgres", "SELECT archived_count, failed_count, last_archived_wal FROM pg_stat_archiver")
    archived, failed, last = archiver.split("|")
    assert int(archived) >= 1 and int(failed) == 0 and last >= segment
    status = json.loads(ok(lab.storage("status")).stdout)
    assert status["settings"]["archive_mode"] == "on"
    assert "archive-wal" in status["settings"]["archive_command"]
    assert status["archiver"]["last_archived_wal"] >= segment
    assert status["archiver"]["failed_count"] == 0
    assert set(status["ready"]) == {"count", "oldest_age_seconds"}
    assert status["redis"]["aof_enabled"] is True and status["redis"]["aof_last_write_status"] == "ok"


# ---------------------------------------------------------------- backups


def test_backups_write_complete_metas(lab: BackupLab, backed_up: dict[str, str]) -> None:
    label = backed_up["base"]
    base = lab.meta(f"base/{label}/meta.json")
    assert set(base["canary"]) == {"appdb"}  # otherdb is no codeb project
    assert lab.psql("otherdb", "SELECT count(*) FROM pg_namespace WHERE nspname = 'codeb_backup'") == "0"
    tar_path = lab.root / "base" / label / "base.tar.gz"
    assert sha256(tar_path) == base["files"]["base.tar.gz"]["sha256"]
    assert sha256(lab.root / "base" / label / "backup_manifest") == base["files"]["backup_manifest"]["sha256"]
    with tarfile.open(tar_path) as tar:
        backup_label = tar.extractfile("backup_label").read().decode()  # type: ignore[union-attr]
    assert f"LABEL: codeb-{label}" in backup_label
    assert f"(file {base['start_wal']})" in backup_label
    canary_rows = lab.psql("appdb", "SELECT count(*) FROM codeb_backup.canary")
    assert int(canary_rows) >= base["canary"]["appdb"]["rows"]

    dump_json = newest(lab.root / "dumps" / "appdb", ".json")
    dump = json.loads(dump_json.read_text())
    assert sha256(dump_json.with_suffix(".dump")) == dump["sha256"]
    assert dump["canary"]["last_id"] > base["canary"]["appdb"]["last_id"]
    assert not (lab.root / "dumps" / "otherdb").exists()

    rdb_json = max((lab.root / "redis").glob("2*.json"))
    rdb = json.loads(rdb_json.read_text())
    assert sha256(rdb_json.with_suffix(".rdb")) == rdb["sha256"]
    assert rdb["canary_token"] == lab.redis_cli("GET", "codeb:canary")
    assert rdb["keys"] >= 21
    aof = lab.meta("redis/aof-latest.json")
    assert sha256(lab.root / "redis" / "aof-latest.tar") == aof["sha256"]
    assert aof["canary_token"] == rdb["canary_token"]
    with tarfile.open(lab.root / "redis" / "aof-latest.tar") as tar:
        assert "appendonlydir/appendonly.aof.manifest" in tar.getnames()
    assert not any(lab.work.iterdir()), "temporary files left in the work dir"


# ---------------------------------------------------------------- drills


def test_drill_passes_on_good_backups(lab: BackupLab, backed_up: dict[str, str]) -> None:
    result = lab.backup_scratch("drill")
    record = json.loads(result.stdout)
    assert result.returncode == 0, record["failures"]
    assert record["ok"] and record["failures"] == [] and record["base"] == backed_up["base"]
    live_rows = int(lab.psql("appdb", "SELECT count(*) FROM items"))
    assert record["databases"]["appdb"]["canary_ok"]
    assert record["databases"]["appdb"]["tables"]["public.items"] == live_rows == 5  # WAL after the base replayed
    assert record["dumps"]["appdb"]["canary_ok"]
    assert record["redis"]["rdb"]["canary_ok"] and record["redis"]["rdb"]["keys"] >= 21
    assert record["redis"]["aof"]["canary_ok"] and record["redis"]["aof"]["keys"] >= 21
    assert record["recovery_time_seconds"] > 0 and record["recovery_point_seconds"] is not None
    assert history(lab)[-1] == record
    assert not any(lab.scratch.iterdir()) and not lab.leftover_pids()
    status = json.loads(ok(lab.backup("status")).stdout)
    assert status["drill"] == record and status["base"]["label"] == backed_up["base"]
    assert status["dumps"]["appdb"]["file"] == record["dumps"]["appdb"]["file"]
    assert status["wal"]["count"] >= 2 and status["rdb"] and status["aof"]


def test_drill_fails_and_records_a_corrupted_dump(lab: BackupLab, backed_up: dict[str, str]) -> None:
    dump = newest(lab.root / "dumps" / "appdb", ".dump")
    original = dump.read_bytes()
    try:
        damaged = bytearray(original)
        for offset in range(len(damaged) // 2, len(damaged) // 2 + 64):
            damaged[offset] ^= 0xFF
        dump.write_bytes(bytes(damaged))
        result = lab.backup_scratch("drill")
    finally:
        dump.write_bytes(original)
    assert result.returncode == 1
    record = history(lab)[-1]
    assert not record["ok"]
    assert [f for f in record["failures"] if f.startswith("dump appdb") and "sha256" in f], record["failures"]
    assert record["databases"]["appdb"]["canary_ok"]  # the rest of the drill still ran and passed
    assert "dump appdb" in result.stderr
    assert not any(lab.scratch.iterdir()) and not lab.leftover_pids()


def test_drill_fails_and_records_a_missing_wal_segment(lab: BackupLab, backed_up: dict[str, str]) -> None:
    for _ in range(3):
        lab.switch_wal()
    wal = lab.root / "wal"
    start = lab.meta(f"base/{backed_up['base']}/meta.json")["start_wal"]
    backup_file = next(wal.glob(f"{start}.*.backup"))
    stop_line = re.search(r"STOP WAL LOCATION: \S+ \(file (\w+)\)", backup_file.read_text())
    assert stop_line, backup_file.read_text()
    stop = stop_line.group(1)
    segments = sorted(p.name for p in wal.iterdir() if SEGMENT.fullmatch(p.name))
    victim = [s for s in segments if s > stop][1]  # after the backup's own WAL, not the newest
    aside = lab.base / victim
    shutil.move(wal / victim, aside)
    try:
        result = lab.backup_scratch("drill")
    finally:
        shutil.move(aside, wal / victim)
    assert result.returncode == 1
    record = history(lab)[-1]
    assert not record["ok"]
    pitr = [f for f in record["failures"] if f.startswith("pitr")]
    assert any(victim in f and "missing" in f for f in pitr), record["failures"]
    assert any("recovery stopped" in f for f in pitr), record["failures"]  # the replay itself fell short
    assert victim in result.stderr
    runs = history(lab)
    assert any(not r["ok"] and any(f.startswith("dump appdb") for f in r["failures"]) for r in runs)
    assert not any(lab.scratch.iterdir()) and not lab.leftover_pids()


# ---------------------------------------------------------------- point-in-time restore


def test_restore_pitr_lands_between_two_inserts(lab: BackupLab, backed_up: dict[str, str]) -> None:
    lab.psql("appdb", "INSERT INTO items (note) VALUES ('before target')")
    time.sleep(1.1)
    target = datetime.datetime.now(datetime.UTC).isoformat()
    time.sleep(1.1)
    lab.psql("appdb", "INSERT INTO items (note) VALUES ('after target')")
    lab.switch_wal()

    assert lab.backup_scratch("restore-pitr", "appdb", "--to", target.replace("+00:00", "")).returncode == 2
    assert lab.backup_scratch("restore-pitr", "appdb", "--to", "2000-01-01T00:00:00Z").returncode == 2
    assert lab.backup_scratch("restore-pitr", "appdb", "--to", "2999-01-01T00:00:00Z").returncode == 2

    info = json.loads(ok(lab.backup_scratch("restore-pitr", "appdb", "--to", target, "--json")).stdout)
    try:
        notes = lab.psql("appdb", "SELECT note FROM items ORDER BY id", host=info["socket_dir"], port=info["port"])
        assert "before target" in notes.splitlines()
        assert "after target" not in notes.splitlines()
        assert info["recovered_to"] and info["database"] == "appdb"
        listed = ok(lab.backup_scratch("restore-pitr", "--list"))
        assert info["name"] in listed.stdout and "running" in listed.stdout
        assert "after target" in lab.psql("appdb", "SELECT string_agg(note, ',') FROM items")  # live untouched
    finally:
        dropped = lab.backup_scratch("restore-pitr", "--drop", info["name"])
    ok(dropped)
    assert not Path(info["socket_dir"]).exists() and not lab.leftover_pids()


def test_restore_pitr_to_latest_replays_every_archived_segment(lab: BackupLab, backed_up: dict[str, str]) -> None:
    lab.psql("appdb", "INSERT INTO items (note) VALUES ('newest archived')")
    lab.switch_wal()
    info = json.loads(ok(lab.backup_scratch("restore-pitr", "appdb", "--to", "latest", "--json")).stdout)
    try:
        assert info["target"] == "latest"
        notes = lab.psql("appdb", "SELECT note FROM items ORDER BY id", host=info["socket_dir"], port=info["port"])
        assert notes.splitlines()[-1] == "newest archived"
    finally:
        ok(lab.backup_scratch("restore-pitr", "--drop", info["name"]))


# ---------------------------------------------------------------- prune (last: it removes files)


def test_prune_keeps_the_newest_base_and_the_wal_it_needs(lab: BackupLab, backed_up: dict[str, str]) -> None:
    old = backed_up["base"]
    while datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ") == old:
        time.sleep(0.2)
    ok(lab.storage("base-backup"))
    lab.switch_wal()
    new = newest(lab.root / "base", "").name
    assert new != old
    start = lab.meta(f"base/{new}/meta.json")["start_wal"]
    wal = lab.root / "wal"
    history_file = wal / "00000002.history"  # a timeline history file must survive any prune
    history_file.write_text("1\t0/3000000\tno recovery target specified\n")
    try:
        result = ok(lab.backup("prune", "--keep-days", "0"))
        remaining = sorted(p.name for p in wal.iterdir())
        assert history_file.exists()
    finally:
        history_file.unlink()
    assert not (lab.root / "base" / old).exists() and (lab.root / "base" / new / "meta.json").exists()
    assert f"removed base/{old}" in result.stdout
    assert start in remaining
    assert all(name[8:24] >= start[8:24] for name in remaining if not name.endswith(".history"))
    assert any(name.endswith(".backup") for name in remaining)
    assert list((lab.root / "dumps" / "appdb").glob("*.dump")), "the newest dump must be kept"
    assert list((lab.root / "redis").glob("2*.rdb")), "the newest RDB must be kept"
    drill = lab.backup_scratch("drill")
    assert drill.returncode == 0, json.loads(drill.stdout)["failures"]
    assert json.loads(drill.stdout)["base"] == new
