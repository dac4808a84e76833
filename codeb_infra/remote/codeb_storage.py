"""codeb-storage: the storage server's side of PostgreSQL and Redis backups.

WAL archiving (PostgreSQL's archive_command), base backups, per-project dumps and Redis snapshots,
each shipped to the backup server with its sha256 and a meta file written last; standard library only.
The installed entry script (bin/codeb-storage) runs `main`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from typing import IO, Any

from . import codeb_common as common
from .codeb_common import DB_NAME, EXIT_FAILED, EXIT_USAGE, WAL_NAME, Failure, canary_summary_sql, parse_canary_summary

CANARY_SETUP_SQL = (
    "CREATE SCHEMA IF NOT EXISTS codeb_backup; "
    "REVOKE ALL ON SCHEMA codeb_backup FROM PUBLIC; "
    "CREATE TABLE IF NOT EXISTS codeb_backup.canary ("
    "id bigserial PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now(), token text NOT NULL)"
)
PROJECT_DATABASES_SQL = (
    "SELECT datname FROM pg_database "
    "WHERE shobj_description(oid, 'pg_database') LIKE 'codeb project %' ORDER BY datname"
)
DEFAULT_SHIP = ["ssh", "-o", "BatchMode=yes", "codeb-backup", "/usr/local/lib/codeb/codeb-backup", "put"]
REDIS_ERRORS = (
    "ERR",
    "NOAUTH",
    "WRONGPASS",
    "LOADING",
    "MISCONF",
    "READONLY",
    "BUSY",
    "NOPERM",
    "Could not connect",
    "AUTH failed",
)


def parse_info(text: str) -> dict[str, str]:
    """redis INFO output as {field: value}."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and not key.startswith("#"):
            fields[key] = value
    return fields


def _size(handle: IO[bytes]) -> int:
    return os.fstat(handle.fileno()).st_size


# ---------------------------------------------------------------- shipping


def ship_command() -> list[str]:
    """CODEB_SHIP (a shlex string) if set; else ssh to the backup server, as postgres (the key's owner)."""
    override = os.environ.get("CODEB_SHIP")
    if override:
        return shlex.split(override)
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return prefix + DEFAULT_SHIP


def ship(rel: str, handle: IO[bytes], sha256: str, replace: bool = False) -> str:
    """Send an open binary file as REL; the backup side checks the sha256 before storing."""
    handle.seek(0)
    argv = ship_command() + [rel, sha256] + (["--replace"] if replace else [])
    result = subprocess.run(argv, stdin=handle, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = " / ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise Failure(f"shipping {rel} failed (exit {result.returncode}): {detail}")
    return result.stdout.strip()


def ship_json(rel: str, data: dict[str, Any], replace: bool = False) -> str:
    with tempfile.TemporaryFile() as handle:
        handle.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
        handle.flush()
        return ship(rel, handle, common.sha256(handle), replace=replace)


def ship_file(rel: str, path: str, replace: bool = False) -> dict[str, Any]:
    """Ship a file; returns {"size", "sha256"} of exactly what was sent (one open file, read twice)."""
    with open(path, "rb") as handle:
        sha256 = common.sha256(handle)
        ship(rel, handle, sha256, replace=replace)
        return {"size": _size(handle), "sha256": sha256}


# ---------------------------------------------------------------- PostgreSQL


def _as_postgres(argv: list[str]) -> list[str]:
    return (["runuser", "-u", "postgres", "--"] + argv) if os.geteuid() == 0 else argv


def psql(args: argparse.Namespace, database: str, sql: str) -> str:
    argv = _as_postgres(
        [os.path.join(args.pg_bin, "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql]
    )
    return common.run(argv, f"psql in {database}", cwd="/").strip()


def project_databases(args: argparse.Namespace) -> list[str]:
    return [line for line in psql(args, "postgres", PROJECT_DATABASES_SQL).splitlines() if line]


def write_canary(args: argparse.Namespace, database: str) -> dict[str, Any]:
    """Insert one canary row and return the summary of all rows up to it."""
    psql(args, database, CANARY_SETUP_SQL)
    token = secrets.token_hex(16)
    last_id = int(psql(args, database, f"INSERT INTO codeb_backup.canary (token) VALUES ('{token}') RETURNING id"))
    return parse_canary_summary(psql(args, database, canary_summary_sql(last_id)), last_id)


def _work_dir(args: argparse.Namespace) -> str:
    os.makedirs(args.work_dir, mode=0o700, exist_ok=True)
    return args.work_dir


def archive_wal(args: argparse.Namespace) -> int:
    if not WAL_NAME.fullmatch(args.name):
        sys.stderr.write(f"archive-wal: {args.name!r} is not a WAL file name\n")
        return EXIT_USAGE
    try:
        with open(args.path, "rb") as handle:
            sha256 = common.sha256(handle)
            reply = ship(f"wal/{args.name}", handle, sha256)
    except (OSError, Failure) as error:
        sys.stderr.write(f"archive-wal {args.name}: {error}\n")
        return EXIT_FAILED
    print(f"archived {args.name}: {reply}")
    return 0


def read_start_wal(tar_path: str) -> str:
    with tarfile.open(tar_path, "r:gz") as tar:
        for member in tar:
            content = tar.extractfile(member) if os.path.normpath(member.name) == "backup_label" else None
            if content is not None:
                return common.parse_backup_label(content.read().decode())
    raise Failure(f"{tar_path} has no backup_label")


def base_backup(args: argparse.Namespace) -> int:
    started = common.now()
    label = common.stamp(started)
    tmp = None
    try:
        canary = {db: write_canary(args, db) for db in project_databases(args)}
        tmp = tempfile.mkdtemp(prefix=f"base-{label}-", dir=_work_dir(args))
        out = os.path.join(tmp, "out")
        common.run(
            _as_postgres(
                [
                    os.path.join(args.pg_bin, "pg_basebackup"),
                    "-D",
                    out,
                    "-Ft",
                    "-z",
                    "-X",
                    "fetch",
                    "-c",
                    "fast",
                    "-l",
                    f"codeb-{label}",
                ]
            ),
            "pg_basebackup",
            cwd="/",
        )
        finished = common.now()
        extra = sorted(set(os.listdir(out)) - {"base.tar.gz", "backup_manifest"})
        if extra:
            raise Failure(f"pg_basebackup wrote {extra}; tablespaces are not supported by codeb-storage")
        start_wal = read_start_wal(os.path.join(out, "base.tar.gz"))
        files = {
            name: ship_file(f"base/{label}/{name}", os.path.join(out, name))
            for name in ("base.tar.gz", "backup_manifest")
        }
        meta = {
            "label": label,
            "started_at": common.iso(started),
            "finished_at": common.iso(finished),
            "start_wal": start_wal,
            "size": sum(f["size"] for f in files.values()),
            "files": files,
            "canary": canary,
        }
        ship_json(f"base/{label}/meta.json", meta)  # last: a base backup with meta.json is complete
    except (Failure, OSError, ValueError) as error:
        sys.stderr.write(f"base-backup {label} failed: {error}\n")
        return EXIT_FAILED
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"base backup {label}: {meta['size']} bytes, start WAL {start_wal}, canary in {len(canary)} database(s)")
    return 0


def dump(args: argparse.Namespace) -> int:
    stamp = common.stamp(common.now())
    failed = []
    done = []
    try:
        databases = project_databases(args)
    except Failure as error:
        sys.stderr.write(f"dump: {error}\n")
        return EXIT_FAILED
    for db in databases:
        path = None
        try:
            if not DB_NAME.fullmatch(db):
                raise Failure("name is not [a-z0-9_]{1,63}, the backup server would refuse it")
            canary = write_canary(args, db)
            fd, path = tempfile.mkstemp(prefix=f"dump-{db}-", suffix=".dump", dir=_work_dir(args))
            os.close(fd)
            began = common.now()
            common.run(
                _as_postgres([os.path.join(args.pg_bin, "pg_dump"), "-Fc", "-d", db, "-f", path]),
                f"pg_dump {db}",
                cwd="/",
            )
            finished = common.now()
            shipped = ship_file(f"dumps/{db}/{stamp}.dump", path)
            meta = {
                "database": db,
                "file": f"{stamp}.dump",
                "started_at": common.iso(began),
                "finished_at": common.iso(finished),
                **shipped,
                "canary": canary,
            }
            ship_json(f"dumps/{db}/{stamp}.json", meta)
            done.append(f"{db} ({shipped['size']} bytes)")
        except (Failure, OSError, ValueError) as error:
            failed.append(db)
            sys.stderr.write(f"dump of {db} failed: {error}\n")
        finally:
            if path and os.path.exists(path):
                os.unlink(path)
    print(f"dumps {stamp}: {', '.join(done) or 'none'}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return EXIT_FAILED if failed else 0


# ---------------------------------------------------------------- Redis


def _redis_password(args: argparse.Namespace) -> str | None:
    try:
        with open(args.redis_password_file) as handle:
            return handle.read().strip() or None
    except FileNotFoundError:
        return None


def redis(args: argparse.Namespace, *words: str) -> str:
    """One redis-cli command; the password travels only in REDISCLI_AUTH, never in argv."""
    env = dict(os.environ)
    env.pop("REDISCLI_AUTH", None)
    password = _redis_password(args)
    if password:
        env["REDISCLI_AUTH"] = password
    argv = [args.redis_cli, "-e", "-h", args.redis_host, "-p", str(args.redis_port), *words]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    except subprocess.TimeoutExpired as error:
        raise Failure(f"redis {words[0]}: no answer within 60s") from error
    out = result.stdout.strip()
    if result.returncode != 0 or out.startswith(REDIS_ERRORS):
        raise Failure(f"redis {words[0]}: {(out or result.stderr.strip())[:300]}")
    return out


def redis_info(args: argparse.Namespace) -> dict[str, str]:
    return parse_info(redis(args, "INFO", "persistence"))


def _wait_redis(args: argparse.Namespace, ready: Callable[[dict[str, str]], bool], what: str) -> dict[str, str]:
    deadline = time.monotonic() + args.timeout
    while True:
        info = redis_info(args)
        if ready(info):
            return info
        if time.monotonic() > deadline:
            raise Failure(f"redis: {what} not done within {args.timeout:g}s")
        time.sleep(0.2)


def bgsave(args: argparse.Namespace) -> dict[str, str]:
    """BGSAVE and wait for it; a save already running is waited for and then ours is started."""
    for _attempt in range(3):
        before = _wait_redis(args, lambda i: i.get("rdb_bgsave_in_progress") == "0", "running BGSAVE")
        try:
            reply = redis(args, "BGSAVE")
        except Failure as error:
            if "already in progress" in str(error):
                continue
            raise
        if not reply.startswith("Background saving"):
            raise Failure(f"redis BGSAVE answered {reply!r}")

        def finished(info: dict[str, str], before: dict[str, str] = before) -> bool:
            return info.get("rdb_bgsave_in_progress") == "0" and (
                info.get("rdb_last_save_time") != before.get("rdb_last_save_time")
                or int(info.get("rdb_saves", 0)) > int(before.get("rdb_saves", 0))
            )

        info = _wait_redis(args, finished, "BGSAVE")
        if info.get("rdb_last_bgsave_status") != "ok":
            raise Failure(f"redis BGSAVE failed: rdb_last_bgsave_status={info.get('rdb_last_bgsave_status')}")
        return info
    raise Failure("redis: another BGSAVE kept running; ours never started")


def _manifest(aof_dir: str) -> dict[str, bytes]:
    found = {}
    for name in sorted(os.listdir(aof_dir)):
        if name.endswith(".manifest"):
            with open(os.path.join(aof_dir, name), "rb") as handle:
                found[name] = handle.read()
    return found


def tar_aof(args: argparse.Namespace, handle: IO[bytes]) -> None:
    """Tar appendonlydir into ``handle``; retried if an AOF rewrite changed the file set meanwhile."""
    aof_dir = os.path.join(args.redis_dir, "appendonlydir")
    for _attempt in range(3):
        _wait_redis(args, lambda i: i.get("aof_rewrite_in_progress") == "0", "AOF rewrite")
        before = _manifest(aof_dir)
        if not before:
            raise Failure(f"{aof_dir} has no AOF manifest")
        handle.seek(0)
        handle.truncate()
        with tarfile.open(fileobj=handle, mode="w") as tar:
            tar.add(aof_dir, arcname="appendonlydir")
        handle.flush()
        if _manifest(aof_dir) == before and redis_info(args).get("aof_rewrite_in_progress") == "0":
            return
    raise Failure("AOF rewrites kept changing appendonlydir while it was archived")


def redis_snapshot(args: argparse.Namespace) -> int:
    moment = common.now()
    stamp = common.stamp(moment)
    token = f"{common.iso(moment)} {secrets.token_hex(8)}"
    try:
        if redis(args, "SET", "codeb:canary", token) != "OK":
            raise Failure("redis SET codeb:canary was not acknowledged")
        bgsave(args)
        keys = int(redis(args, "DBSIZE"))
        with open(os.path.join(args.redis_dir, args.rdb_name), "rb") as handle:
            sha256 = common.sha256(handle)
            ship(f"redis/{stamp}.rdb", handle, sha256)
            rdb = {
                "file": f"{stamp}.rdb",
                "finished_at": common.iso(common.now()),
                "size": _size(handle),
                "sha256": sha256,
                "canary_token": token,
                "keys": keys,
            }
        ship_json(f"redis/{stamp}.json", rdb)
        info = redis_info(args)
        if info.get("aof_enabled") != "1":
            raise Failure("AOF is disabled in Redis (appendonly no); RDB shipped, aof-latest not updated")
        with tempfile.TemporaryFile() as handle:
            tar_aof(args, handle)
            sha256 = common.sha256(handle)
            ship("redis/aof-latest.tar", handle, sha256, replace=True)
            aof = {
                "file": "aof-latest.tar",
                "finished_at": common.iso(common.now()),
                "size": _size(handle),
                "sha256": sha256,
                "canary_token": token,
            }
        ship_json("redis/aof-latest.json", aof, replace=True)
    except (Failure, OSError, ValueError) as error:
        sys.stderr.write(f"redis-snapshot {stamp} failed: {error}\n")
        return EXIT_FAILED
    print(f"redis snapshot {stamp}: rdb {rdb['size']} bytes ({keys} keys), aof {aof['size']} bytes")
    return 0


# ---------------------------------------------------------------- status


ARCHIVER_SQL = (
    "SELECT row_to_json(a) FROM (SELECT archived_count, last_archived_wal, last_archived_time, failed_count, "
    "last_failed_wal, last_failed_time FROM pg_stat_archiver) a"
)
SETTINGS_SQL = (
    "SELECT json_object_agg(name, setting) FROM pg_settings "
    "WHERE name IN ('wal_level', 'archive_mode', 'archive_command', 'archive_timeout')"
)


def status(args: argparse.Namespace) -> int:
    out = {}
    failed = False
    try:
        out["archiver"] = json.loads(psql(args, "postgres", ARCHIVER_SQL))
        out["settings"] = json.loads(psql(args, "postgres", SETTINGS_SQL))
    except (Failure, ValueError) as error:
        out.setdefault("archiver", {"error": str(error)})
        out.setdefault("settings", {"error": str(error)})
        failed = True
    status_dir = os.path.join(args.pgdata, "pg_wal", "archive_status")
    try:
        ready = [os.path.join(status_dir, n) for n in os.listdir(status_dir) if n.endswith(".ready")]
        oldest = min((os.stat(p).st_mtime for p in ready), default=None)
        out["ready"] = {
            "count": len(ready),
            "oldest_age_seconds": None if oldest is None else round(time.time() - oldest, 3),
        }
    except OSError as error:
        out["ready"] = {"error": str(error)}
        failed = True
    try:
        info = redis_info(args)
        out["redis"] = {
            "aof_enabled": info.get("aof_enabled") == "1",
            "aof_last_write_status": info.get("aof_last_write_status"),
            "rdb_last_bgsave_status": info.get("rdb_last_bgsave_status"),
            "rdb_last_save_time": int(info.get("rdb_last_save_time", 0)),
        }
    except (Failure, OSError, ValueError) as error:
        out["redis"] = {"error": str(error)}
    print(json.dumps(out, indent=2, sort_keys=True))
    return EXIT_FAILED if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeb-storage")
    parser.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin")
    parser.add_argument("--pgdata", default="/var/lib/postgresql/15/main")
    parser.add_argument("--work-dir", default="/var/lib/postgresql/codeb-backup-work")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--redis-password-file", default="/etc/codeb/secrets/redis.password")
    parser.add_argument("--redis-dir", default="/var/lib/redis")
    parser.add_argument("--rdb-name", default="dump.rdb")
    parser.add_argument("--redis-cli", default="redis-cli")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for BGSAVE / AOF rewrite")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("archive-wal", help="archive_command: ship one WAL file (%%p %%f)")
    p.add_argument("path")
    p.add_argument("name")
    sub.add_parser("base-backup")
    sub.add_parser("dump")
    sub.add_parser("redis-snapshot")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    return {
        "archive-wal": archive_wal,
        "base-backup": base_backup,
        "dump": dump,
        "redis-snapshot": redis_snapshot,
        "status": status,
    }[args.command](args)
