"""Restores on the backup server: the restore drill (the latest base backup with all archived WAL,
the latest dumps, RDB and AOF, each restored into scratch servers and checked against the canary
recorded at backup time) and point-in-time restores left running for inspection."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import secrets
import shlex
import shutil
import sys
import time
from typing import Any

from . import codeb_backup_archive as archive
from . import codeb_backup_scratch as scratch
from . import codeb_common as common
from .codeb_common import DB_NAME, DB_PATTERN, EXIT_FAILED, EXIT_USAGE, SEGMENT_PATTERN, STAMP_PATTERN, Failure

Scratch = scratch.ScratchPostgres | scratch.ScratchRedis  # a scratch server a restore started

TABLE_COUNTS_SQL = (
    "SELECT coalesce(json_object_agg(n.nspname || '.' || c.relname, "
    "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), "
    "false, true, '')))[1]::text::bigint), '{}') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%'"
)


def parse_lsn(text: str) -> int:
    high, low = text.strip().split("/")
    return (int(high, 16) << 32) | int(low, 16)


# ---------------------------------------------------------------- drill


def drill(args: argparse.Namespace) -> int:
    started = common.now()
    clock = time.monotonic()
    record: dict[str, Any] = {
        "started_at": common.iso(started),
        "finished_at": None,
        "ok": False,
        "failures": [],
        "recovery_point_seconds": None,
        "recovery_time_seconds": None,
        "base": None,
        "databases": {},
        "dumps": {},
        "redis": {"rdb": None, "aof": None},
    }
    failures = record["failures"]
    run_dir = None
    started_processes: list[Scratch] = []  # every scratch server, stopped in finally whatever happened
    try:
        run_dir = scratch.scratch_dir(
            args.scratch, f"drill-{started.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        )
        cluster = None
        try:
            cluster = _drill_pitr(args, run_dir, record, clock, started_processes)
        except Failure as error:
            failures.append(f"pitr: {error}")
        try:
            _drill_dumps(args, run_dir, record, cluster, started_processes)
        except Failure as error:
            failures.append(f"dumps: {error}")
        _drill_redis(args, run_dir, record, started_processes)
    except Exception as error:  # the drill must record every run, even one that crashed
        failures.append(f"drill crashed: {type(error).__name__}: {error}")
    finally:
        for process in reversed(started_processes):
            process.stop()
        if run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
    record["finished_at"] = common.iso(common.now())
    record["ok"] = not failures
    os.makedirs(os.path.join(args.root, "drills"), mode=0o750, exist_ok=True)
    archive.append_line(os.path.join(args.root, "drills", "history.jsonl"), record)
    print(json.dumps(record, indent=2, sort_keys=True))
    for failure in failures:
        sys.stderr.write(f"drill failure: {failure}\n")
    return 0 if record["ok"] else EXIT_FAILED


def _drill_pitr(
    args: argparse.Namespace, run_dir: str, record: dict[str, Any], clock: float, started: list[Scratch]
) -> scratch.ScratchPostgres:
    bases = archive.bases(args.root)
    if not bases:
        raise Failure("no complete base backup (base/<LABEL>/meta.json) in the archive")
    label = max(bases, key=lambda key: (bases[key]["finished_at"], key))
    meta = bases[label]
    record["base"] = label
    for name in ("base.tar.gz", "backup_manifest"):
        scratch.check_file(args.root, f"base/{label}/{name}", meta.get("files", {}).get(name, {}), f"base {label}")
    cluster = scratch.ScratchPostgres(args.pg_bin, run_dir)
    started.append(cluster)
    scratch.restore_base(args.root, label, cluster)
    cluster.start(args.timeout)
    cluster.wait_promoted(args.timeout)
    problems = []
    segment_size = int(cluster.psql("postgres", "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"))
    archived = archive.wal_files(args.root)
    gaps = archive.missing_segments(archived, meta["start_wal"], segment_size)
    if gaps:
        problems.append(f"WAL archive is missing segment(s) {', '.join(gaps[:5])} after base {label}")
    replayed = parse_lsn(cluster.psql("postgres", "SELECT pg_last_wal_replay_lsn()") or "0/0")
    newest = max((n for n in archived if re.fullmatch(SEGMENT_PATTERN, n)), default=None, key=archive.wal_position)
    if newest and replayed // segment_size < archive.segment_number(newest, segment_size):
        stopped_in = archive.segment_name(int(meta["start_wal"][:8], 16), replayed // segment_size, segment_size)
        problems.append(f"recovery stopped in WAL segment {stopped_in}, before the newest archived one {newest}")
    for db, expected in sorted(meta.get("canary", {}).items()):
        entry: dict[str, Any] = {"canary_ok": False, "canary_rows": None, "tables": {}}
        record["databases"][db] = entry
        try:
            got = common.parse_canary_summary(
                cluster.psql(db, common.canary_summary_sql(expected["last_id"])), expected["last_id"]
            )
            entry["canary_rows"] = got["rows"]
            entry["canary_ok"] = got == {k: expected[k] for k in ("last_id", "rows", "checksum")}
            entry["tables"] = json.loads(cluster.psql(db, TABLE_COUNTS_SQL) or "{}")
        except Failure as error:
            problems.append(f"database {db}: {error}")
            continue
        if not entry["canary_ok"]:
            problems.append(f"database {db}: canary rows {got} differ from base meta {expected}")
    point = cluster.psql("postgres", "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())")
    record["recovery_point_seconds"] = round(float(point), 3) if point else None
    if problems:
        record["failures"].extend(f"pitr: {p}" for p in problems)
    else:
        record["recovery_time_seconds"] = round(time.monotonic() - clock, 3)
    return cluster


def _drill_dumps(
    args: argparse.Namespace,
    run_dir: str,
    record: dict[str, Any],
    cluster: scratch.ScratchPostgres | None,
    started: list[Scratch],
) -> None:
    dumps = {db: newest for db, metas in archive.dumps(args.root).items() if (newest := archive.newest(metas))}
    if not dumps:
        raise Failure("no complete dump (dumps/<db>/<STAMP>.json) in the archive")
    if cluster is None or cluster.pid is None or not scratch.alive(cluster.pid):
        # the PITR restore failed: restore the dumps into an empty cluster of their own
        cluster = scratch.ScratchPostgres(args.pg_bin, run_dir, os.path.join(run_dir, "dumps-data"))
        started.append(cluster)
        cluster.initdb()
        cluster.write_config()
        cluster.start(args.timeout)
    for index, (db, (stamp, meta)) in enumerate(sorted(dumps.items())):
        rel = f"dumps/{db}/{stamp}.dump"
        entry: dict[str, Any] = {"file": rel, "canary_ok": False, "restore_seconds": None}
        record["dumps"][db] = entry
        try:
            path = scratch.check_file(args.root, rel, meta, f"dump {db}")
            scratch_db = f"codeb_drill_{index}"
            cluster.psql("postgres", f"CREATE DATABASE {scratch_db}")
            began = time.monotonic()
            common.run(
                [
                    os.path.join(args.pg_bin, "pg_restore"),
                    "--no-owner",
                    "--no-acl",
                    "--exit-on-error",
                    "-h",
                    cluster.run_dir,
                    "-p",
                    str(cluster.port),
                    "-U",
                    "postgres",
                    "-d",
                    scratch_db,
                    path,
                ],
                f"pg_restore of {rel}",
            )
            entry["restore_seconds"] = round(time.monotonic() - began, 3)
            expected = meta["canary"]
            got = common.parse_canary_summary(
                cluster.psql(scratch_db, common.canary_summary_sql(expected["last_id"])), expected["last_id"]
            )
            entry["canary_ok"] = got == {k: expected[k] for k in ("last_id", "rows", "checksum")}
            if not entry["canary_ok"]:
                raise Failure(f"canary rows {got} differ from the dump's meta {expected}")
        except (Failure, KeyError) as error:
            record["failures"].append(f"dump {db}: {error}")


def _drill_redis(args: argparse.Namespace, run_dir: str, record: dict[str, Any], started: list[Scratch]) -> None:
    redis_dir = os.path.join(args.root, "redis")
    newest = archive.newest(archive.metas(redis_dir, "rdb"))
    if newest is None:
        record["failures"].append("redis rdb: no complete RDB snapshot (redis/<STAMP>.json) in the archive")
    else:
        stamp, meta = newest
        entry: dict[str, Any] = {"file": f"redis/{stamp}.rdb", "canary_ok": False, "keys": None}
        record["redis"]["rdb"] = entry
        try:
            source = scratch.check_file(args.root, entry["file"], meta, "redis rdb")
            directory = scratch.scratch_dir(run_dir, "rdb")
            shutil.copyfile(source, os.path.join(directory, "dump.rdb"))
            server = scratch.ScratchRedis(args.redis_server, args.redis_cli, directory)
            started.append(server)
            server.start(["--appendonly", "no"])
            _redis_checks(server, meta, entry)
        except Failure as error:
            record["failures"].append(f"redis rdb: {error}")
    meta = archive.read_json(os.path.join(redis_dir, "aof-latest.json"))
    if not isinstance(meta, dict):
        record["failures"].append("redis aof: no redis/aof-latest.json in the archive")
        return
    entry = {"file": "redis/aof-latest.tar", "canary_ok": False, "keys": None}
    record["redis"]["aof"] = entry
    try:
        source = scratch.check_file(args.root, entry["file"], meta, "redis aof")
        directory = scratch.scratch_dir(run_dir, "aof")
        scratch.safe_extract(source, directory)
        server = scratch.ScratchRedis(args.redis_server, args.redis_cli, directory)
        started.append(server)
        server.start(["--appendonly", "yes", "--appenddirname", "appendonlydir"])
        _redis_checks(server, meta, entry)
    except Failure as error:
        record["failures"].append(f"redis aof: {error}")


def _redis_checks(server: scratch.ScratchRedis, meta: dict[str, Any], entry: dict[str, Any]) -> None:
    token = server.command("GET", "codeb:canary")
    entry["keys"] = int(server.command("DBSIZE"))
    entry["canary_ok"] = bool(meta.get("canary_token")) and token == meta["canary_token"]
    if not entry["canary_ok"]:
        raise Failure(f"codeb:canary is {token!r}, the snapshot's meta says {meta.get('canary_token')!r}")


# ---------------------------------------------------------------- restore-pitr


PITR_NAME = re.compile(rf"pitr-{DB_PATTERN}-{STAMP_PATTERN}")


def restore_pitr(args: argparse.Namespace) -> int:
    if args.list:
        return _pitr_list(args)
    if args.drop:
        return _pitr_drop(args)
    if not args.database or not args.to:
        sys.stderr.write("restore-pitr needs DB and --to TIMESTAMP (or --list, or --drop NAME)\n")
        return EXIT_USAGE
    if not DB_NAME.fullmatch(args.database):
        sys.stderr.write(f"{args.database!r} is not a codeb database name\n")
        return EXIT_USAGE
    bases = {label: archive.parse_time(meta["finished_at"]) for label, meta in archive.bases(args.root).items()}
    if args.to == "latest":
        # Everything archived: the newest base backup, then every WAL segment the archive holds.
        target = None
        if not bases:
            sys.stderr.write("there is no complete base backup to restore from\n")
            return EXIT_USAGE
        label = max(bases, key=lambda key: (bases[key], key))
    else:
        try:
            target = archive.parse_time(args.to)
        except ValueError as error:
            sys.stderr.write(f"--to: {error}\n")
            return EXIT_USAGE
        now = datetime.datetime.now(datetime.UTC)
        if target > now:
            sys.stderr.write(f"--to {common.iso(target)} is in the future (now {common.iso(now)})\n")
            return EXIT_USAGE
        before = {label: when for label, when in bases.items() if when < target}
        if not before:
            oldest = min(bases.values()) if bases else None
            sys.stderr.write(
                f"--to {common.iso(target)} is before the oldest complete base backup "
                f"({common.iso(oldest) if oldest else 'there is none'}); cannot restore to it\n"
            )
            return EXIT_USAGE
        label = max(before, key=lambda key: (before[key], key))
    name = f"pitr-{args.database}-{common.now().strftime('%Y%m%dT%H%M%SZ')}"
    run_dir = scratch.scratch_dir(args.scratch, name)
    cluster = scratch.ScratchPostgres(args.pg_bin, run_dir)
    try:
        scratch.restore_base(args.root, label, cluster, target_time=common.iso(target) if target else None)
        cluster.start(args.timeout)
        cluster.wait_promoted(args.timeout)
        exists = cluster.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{args.database}'")
        if exists != "1":
            point = common.iso(target) if target else "the end of the archive"
            raise Failure(f"database {args.database} does not exist at {point} (base {label})")
        recovered = cluster.psql("postgres", "SELECT pg_last_xact_replay_timestamp()") or None
    except Failure as error:
        sys.stderr.write(f"restore-pitr failed: {error}\n")
        cluster.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        return EXIT_FAILED
    except BaseException:
        cluster.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    info = {
        "name": name,
        "socket_dir": run_dir,
        "port": cluster.port,
        "database": args.database,
        "target": common.iso(target) if target else "latest",
        "base": label,
        "recovered_to": recovered,
    }
    with open(os.path.join(run_dir, "pitr.json"), "w") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(f"{name}: {args.database} restored to {info['target']} (last transaction replayed {recovered})")
        print(f"connect: psql -h {shlex.quote(run_dir)} -p {cluster.port} -U postgres {args.database}")
        print(f"remove:  codeb-backup restore-pitr --drop {name}")
    return 0


def _pitr_running(args: argparse.Namespace) -> list[dict[str, Any]]:
    found = []
    for name in archive.listdir(args.scratch):
        info = archive.read_json(os.path.join(args.scratch, name, "pitr.json"))
        if PITR_NAME.fullmatch(name) and isinstance(info, dict):
            cluster = scratch.ScratchPostgres(args.pg_bin, os.path.join(args.scratch, name))
            pid = cluster._read_pid()
            info["running"] = pid is not None and scratch.alive(pid)
            found.append(info)
    return found


def _pitr_list(args: argparse.Namespace) -> int:
    found = _pitr_running(args)
    if args.json:
        print(json.dumps(found, indent=2, sort_keys=True))
    for info in [] if args.json else found:
        state = "running" if info["running"] else "stopped"
        print(
            f"{info['name']} {state} database={info['database']} target={info['target']} "
            f"psql -h {info['socket_dir']} -p {info['port']} -U postgres {info['database']}"
        )
    if not found and not args.json:
        print("no restore-pitr clusters")
    return 0


def _pitr_drop(args: argparse.Namespace) -> int:
    if not PITR_NAME.fullmatch(args.drop):
        sys.stderr.write(f"{args.drop!r} is not a restore-pitr name (pitr-DB-STAMP)\n")
        return EXIT_USAGE
    run_dir = os.path.join(args.scratch, args.drop)
    if not os.path.isdir(run_dir):
        sys.stderr.write(f"no restore-pitr cluster {args.drop} under {args.scratch}\n")
        return EXIT_USAGE
    scratch.ScratchPostgres(args.pg_bin, run_dir).stop(mode="fast")
    shutil.rmtree(run_dir)
    print(f"dropped {args.drop}")
    return 0
