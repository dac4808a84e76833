#!/usr/bin/env python3
"""codeb-backup: the backup server's side of PostgreSQL and Redis backups.

Receives files from the storage server (`put`), expires them (`prune`), reports (`status`) and
proves they restore (`drill`, `restore-pitr`) in scratch processes that never touch a live service.
Runs as user codeb-backup, owner of the backup root; standard library only.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_CORRUPT = 4

# The canary summary both codeb-storage (when it writes a backup) and codeb-backup (when it checks a
# restore) run; codeb_storage.py holds a deliberate twin of this constant (a unit test keeps them equal).
CANARY_SUMMARY_SQL = (
    "SELECT count(*), coalesce(max(id), 0), "
    "md5(coalesce(string_agg(id::text || ':' || token, ',' ORDER BY id), '')) "
    "FROM codeb_backup.canary WHERE id <= {last_id}"
)

_STAMP = r"[0-9]{8}T[0-9]{6}Z"
_DB = r"[a-z0-9_]{1,63}"
_SEGMENT = r"[0-9A-F]{24}"
WAL_NAME = re.compile(rf"{_SEGMENT}|{_SEGMENT}\.partial|[0-9A-F]{{8}}\.history|{_SEGMENT}\.[0-9A-F]{{8}}\.backup")
STAMP = re.compile(_STAMP)
DB_NAME = re.compile(_DB)
_AREAS = (
    ("wal", re.compile(rf"wal/(?:{WAL_NAME.pattern})")),
    ("base", re.compile(rf"base/{_STAMP}/(?:base\.tar\.gz|backup_manifest|meta\.json)")),
    ("dumps", re.compile(rf"dumps/{_DB}/{_STAMP}\.(?:dump|json)")),
    ("redis", re.compile(rf"redis/(?:{_STAMP}\.(?:rdb|json)|aof-latest\.(?:tar|json))")),
    # The app server's audit log heads (sequence number and hash), never replaced once stored.
    ("audit", re.compile(r"audit/[0-9]{12}-[0-9a-f]{64}")),
)
LEFTOVER_SECONDS = 86400


class BadPath(ValueError):
    """A relative path outside the whitelist of what the storage server may send."""


class Failure(Exception):
    """A step that failed; the message names what and why."""


# ---------------------------------------------------------------- pure helpers


def area_of(rel):
    """The area ('wal', 'base', 'dumps', 'redis') a shipped relative path belongs to, or BadPath."""
    for area, pattern in _AREAS:
        if pattern.fullmatch(rel):
            return area
    raise BadPath(
        f"refusing {rel!r}: not one of wal/<WAL file>, base/<LABEL>/(base.tar.gz|backup_manifest|meta.json), "
        "dumps/<db>/<STAMP>.(dump|json), redis/<STAMP>.(rdb|json), redis/aof-latest.(tar|json), audit/<SEQ>-<SHA256>"
    )


def canary_summary_sql(last_id):
    return CANARY_SUMMARY_SQL.format(last_id=int(last_id))


def parse_canary_summary(output, last_id):
    rows, _max_id, checksum = output.strip().split("|")
    return {"last_id": int(last_id), "rows": int(rows), "checksum": checksum}


def parse_stamp(stamp):
    return datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)


def parse_time(text):
    """An ISO-8601 time with a timezone (a trailing Z is fine); naive times are refused."""
    try:
        value = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"{text!r} is not an ISO-8601 time") from error
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone; add Z or +00:00")
    return value.astimezone(datetime.UTC)


def iso(value):
    return value.astimezone(datetime.UTC).isoformat()


def wal_position(name):
    """The (log, segment) part of a WAL file name; the timeline is ignored, as pg_archivecleanup does,
    so a segment of a parent timeline is never removed too early."""
    return name[8:24]


def wal_to_remove(names, keep_from):
    """WAL archive files older than segment ``keep_from`` (segments, .partial and .backup files);
    .history files are always kept."""
    keep = wal_position(keep_from)
    return sorted(n for n in names if not n.endswith(".history") and WAL_NAME.fullmatch(n) and wal_position(n) < keep)


def segment_number(name, segment_size):
    log, seg = int(name[8:16], 16), int(name[16:24], 16)
    return log * (0x100000000 // segment_size) + seg


def segment_name(timeline, number, segment_size):
    per_log = 0x100000000 // segment_size
    return f"{timeline:08X}{number // per_log:08X}{number % per_log:08X}"


def missing_segments(names, start_wal, segment_size):
    """Segment names absent from the archive between ``start_wal`` and the newest archived segment."""
    timeline = int(start_wal[:8], 16)
    first = segment_number(start_wal, segment_size)
    have = {}
    for name in names:
        if re.fullmatch(_SEGMENT, name) and int(name[:8], 16) >= timeline:
            have.setdefault(segment_number(name, segment_size), int(name[:8], 16))
    if not have:
        return [start_wal]
    newest = max(have)
    return [segment_name(timeline, n, segment_size) for n in range(first, newest + 1) if n not in have]


def stale(items, now, max_age):
    """Keys of ``items`` ({key: time}) older than ``max_age``, never the newest one."""
    if not items:
        return []
    newest = max(items, key=lambda key: (items[key], key))
    return sorted(key for key, when in items.items() if key != newest and when < now - max_age)


def parse_backup_label(text):
    """The start WAL file name from a backup_label file."""
    match = re.search(r"^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$", text, re.MULTILINE)
    if not match:
        raise ValueError("backup_label has no START WAL LOCATION line")
    return match.group(1)


def parse_lsn(text):
    high, low = text.strip().split("/")
    return (int(high, 16) << 32) | int(low, 16)


def conf_value(value):
    """A postgresql.conf string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


# ---------------------------------------------------------------- files


def _now():
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs(root, rel_dir):
    """Create root/rel_dir one level at a time, each new directory 0750."""
    path = root
    if not os.path.isdir(root):
        os.makedirs(root, mode=0o750, exist_ok=True)
    for part in [p for p in rel_dir.split("/") if p]:
        path = os.path.join(path, part)
        try:
            os.mkdir(path, 0o750)
            os.chmod(path, 0o750)
        except FileExistsError:
            pass
    return path


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _append_line(path, record):
    with open(path, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# ---------------------------------------------------------------- put


def put(args):
    """stdin -> root/REL, atomically, only if its sha256 is what the sender computed."""
    try:
        area = area_of(args.rel)
    except BadPath as error:
        sys.stderr.write(f"{error}\n")
        return EXIT_USAGE
    if not re.fullmatch(r"[0-9a-f]{64}", args.sha256):
        sys.stderr.write(f"refusing {args.rel}: {args.sha256!r} is not a lowercase hex sha256\n")
        return EXIT_USAGE
    if args.replace and area == "wal":
        sys.stderr.write(f"refusing {args.rel}: a WAL file is never replaced\n")
        return EXIT_USAGE
    target = os.path.join(args.root, args.rel)
    parent = _makedirs(args.root, os.path.dirname(args.rel))
    if os.path.exists(target):
        existing = _sha256_file(target)
        if existing == args.sha256:
            print(f"{args.rel} already stored with identical content")
            return 0
        if not args.replace:
            sys.stderr.write(
                f"{args.rel} already stored with different content (sha256 {existing}, offered {args.sha256}); "
                "kept the stored one\n"
            )
            return EXIT_CONFLICT
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=parent)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != args.sha256:
            sys.stderr.write(
                f"{args.rel}: received {size} bytes with sha256 {digest.hexdigest()}, expected {args.sha256} "
                "(transfer cut short or file changed while sent); nothing stored\n"
            )
            return EXIT_CORRUPT
        os.chmod(tmp, 0o640)
        if args.replace:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # unlike rename, never overwrites a file another put stored meanwhile
            except FileExistsError:
                if _sha256_file(target) != args.sha256:
                    sys.stderr.write(f"{args.rel} was stored with different content meanwhile; kept the stored one\n")
                    return EXIT_CONFLICT
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(parent)
    print(f"stored {args.rel} ({size} bytes)")
    return 0


# ---------------------------------------------------------------- inventory of the backup root


def _bases(root):
    """{label: meta} of complete base backups (meta.json present and readable)."""
    found = {}
    base_dir = os.path.join(root, "base")
    for label in _listdir(base_dir):
        if STAMP.fullmatch(label):
            meta = _read_json(os.path.join(base_dir, label, "meta.json"))
            if isinstance(meta, dict) and meta.get("finished_at") and meta.get("start_wal"):
                found[label] = meta
    return found


def _metas(directory, suffix):
    """{stamp: meta} for STAMP.json files next to a STAMP.<suffix> file."""
    found = {}
    for entry in _listdir(directory):
        stamp, _, ext = entry.partition(".")
        if ext == "json" and STAMP.fullmatch(stamp) and os.path.exists(os.path.join(directory, f"{stamp}.{suffix}")):
            meta = _read_json(os.path.join(directory, entry))
            if isinstance(meta, dict):
                found[stamp] = meta
    return found


def _dumps(root):
    dumps_dir = os.path.join(root, "dumps")
    return {db: _metas(os.path.join(dumps_dir, db), "dump") for db in _listdir(dumps_dir) if DB_NAME.fullmatch(db)}


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _newest(metas):
    if not metas:
        return None
    stamp = max(metas)
    return stamp, metas[stamp]


def _wal_files(root):
    return [name for name in _listdir(os.path.join(root, "wal")) if WAL_NAME.fullmatch(name)]


# ---------------------------------------------------------------- status


def status(args):
    root = args.root
    out = {"base": None, "wal": None, "dumps": {}, "rdb": None, "aof": None, "drill": None}
    bases = _bases(root)
    if bases:
        label = max(bases, key=lambda key: (bases[key]["finished_at"], key))
        meta = bases[label]
        out["base"] = {"label": label, "finished_at": meta["finished_at"], "size": meta.get("size"),
                       "start_wal": meta["start_wal"]}
    wal_dir = os.path.join(root, "wal")
    names = _wal_files(root)
    segments = [n for n in names if re.fullmatch(_SEGMENT, n)]
    if names:
        newest = max(segments or names)
        stats = {name: os.stat(os.path.join(wal_dir, name)) for name in names}
        out["wal"] = {
            "newest": newest,
            "newest_at": iso(datetime.datetime.fromtimestamp(stats[newest].st_mtime, datetime.UTC)),
            "count": len(names),
            "bytes": sum(st.st_size for st in stats.values()),
        }
    for db, metas in _dumps(root).items():
        newest = _newest(metas)
        if newest:
            stamp, meta = newest
            out["dumps"][db] = {"file": f"dumps/{db}/{stamp}.dump", "finished_at": meta.get("finished_at"),
                                "size": meta.get("size")}
    newest = _newest(_metas(os.path.join(root, "redis"), "rdb"))
    if newest:
        stamp, meta = newest
        out["rdb"] = {"file": f"redis/{stamp}.rdb", "finished_at": meta.get("finished_at"), "size": meta.get("size")}
    aof = _read_json(os.path.join(root, "redis", "aof-latest.json"))
    if isinstance(aof, dict) and os.path.exists(os.path.join(root, "redis", "aof-latest.tar")):
        out["aof"] = {"file": "redis/aof-latest.tar", "finished_at": aof.get("finished_at"), "size": aof.get("size")}
    out["drill"] = _last_drill(root)
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def _last_drill(root):
    try:
        with open(os.path.join(root, "drills", "history.jsonl")) as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    if not lines:
        return None
    try:
        return json.loads(lines[-1])
    except ValueError:
        return {"error": "last line of drills/history.jsonl is not JSON"}


# ---------------------------------------------------------------- prune


def prune(args):
    root = args.root
    now = _now()
    removed = []

    def remove(path):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)
        else:
            return
        removed.append(os.path.relpath(path, root))

    keep_age = datetime.timedelta(days=args.keep_days)
    bases = _bases(root)
    finished = {label: parse_time(meta["finished_at"]) for label, meta in bases.items()}
    for label in stale(finished, now, keep_age):
        remove(os.path.join(root, "base", label))
        bases.pop(label)
    for label in _listdir(os.path.join(root, "base")):
        if label not in bases and STAMP.fullmatch(label) and parse_stamp(label) < now - _leftover():
            remove(os.path.join(root, "base", label))
    if bases:
        keep_from = min(meta["start_wal"] for meta in bases.values())
        for name in wal_to_remove(_wal_files(root), keep_from):
            remove(os.path.join(root, "wal", name))

    for db, metas in _dumps(root).items():
        directory = os.path.join(root, "dumps", db)
        for stamp in stale({s: parse_time(m["finished_at"]) for s, m in metas.items() if m.get("finished_at")},
                           now, keep_age):
            remove(os.path.join(directory, f"{stamp}.dump"))
            remove(os.path.join(directory, f"{stamp}.json"))
        _remove_leftovers(directory, "dump", metas, now, remove)

    redis_dir = os.path.join(root, "redis")
    rdbs = _metas(redis_dir, "rdb")
    for stamp in stale({s: parse_time(m["finished_at"]) for s, m in rdbs.items() if m.get("finished_at")},
                       now, datetime.timedelta(hours=args.rdb_hours)):
        remove(os.path.join(redis_dir, f"{stamp}.rdb"))
        remove(os.path.join(redis_dir, f"{stamp}.json"))
    _remove_leftovers(redis_dir, "rdb", rdbs, now, remove)

    for directory, dirs, files in os.walk(root):
        if directory == root and "env" in dirs:
            dirs.remove("env")  # not codeb-backup's to clean
        for name in files:
            path = os.path.join(directory, name)
            if name.startswith(".tmp-") and os.stat(path).st_mtime < time.time() - LEFTOVER_SECONDS:
                remove(path)
    for line in removed:
        print(f"removed {line}")
    print(f"prune: removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}")
    return 0


def _leftover():
    return datetime.timedelta(seconds=LEFTOVER_SECONDS)


def _remove_leftovers(directory, suffix, complete, now, remove):
    """Data files without their .json (or the other way round) older than a day: an upload that died."""
    for entry in _listdir(directory):
        stamp, _, ext = entry.partition(".")
        if (ext in (suffix, "json") and STAMP.fullmatch(stamp) and stamp not in complete
                and parse_stamp(stamp) < now - _leftover()):
            remove(os.path.join(directory, entry))


# ---------------------------------------------------------------- scratch processes


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path, lines=15):
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]).strip()
    except OSError:
        return "(no log)"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


def _run(argv, what, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise Failure(f"{what} failed (exit {result.returncode}): {' / '.join(detail)}")
    return result.stdout


def _safe_extract(tar_path, destination):
    with tarfile.open(tar_path) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, filter="data")
            return
        for member in tar.getmembers():  # Python without extraction filters: refuse escapes by hand
            name = os.path.normpath(member.name)
            if name.startswith(("/", "..")) or member.issym() or member.islnk() or member.isdev():
                raise Failure(f"{tar_path}: refusing tar member {member.name!r}")
        tar.extractall(destination)


class ScratchPostgres:
    """A PostgreSQL cluster in a scratch directory: unix socket only, in that directory."""

    def __init__(self, pg_bin, run_dir, data_dir=None):
        self.pg_bin = pg_bin
        self.run_dir = run_dir
        self.data = data_dir or os.path.join(run_dir, "data")
        self.log = os.path.join(run_dir, "postgres.log")
        self.port = _free_port()
        self.pid = None

    def write_config(self, restore_from=None, target_time=None):
        settings = {
            "port": self.port,
            "listen_addresses": conf_value(""),
            "unix_socket_directories": conf_value(self.run_dir),
            "archive_mode": "off",
            "hot_standby": "off",  # no check of max_connections & co against the live server's values
            "shared_buffers": conf_value("32MB"),
            "max_connections": 20,
            "ssl": "off",
            "fsync": "off",
            "logging_collector": "off",
        }
        if restore_from:
            settings["restore_command"] = conf_value(f"cp {shlex.quote(os.path.join(restore_from, 'wal'))}/%f %p")
            settings["recovery_target_action"] = conf_value("promote")
            settings["recovery_target_timeline"] = conf_value("latest")
        if target_time:
            settings["recovery_target_time"] = conf_value(target_time)
        with open(os.path.join(self.data, "postgresql.conf"), "w") as handle:
            handle.write("# written by codeb-backup for a scratch restore; never a live server\n")
            handle.writelines(f"{key} = {value}\n" for key, value in settings.items())
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as handle:
            handle.write("local all all trust\n")
        open(os.path.join(self.data, "pg_ident.conf"), "w").close()
        # ALTER SYSTEM settings of the live server (archive_command!) must not apply here
        open(os.path.join(self.data, "postgresql.auto.conf"), "w").close()
        for stale_file in ("standby.signal", "postmaster.pid", "postmaster.opts"):
            if os.path.exists(os.path.join(self.data, stale_file)):
                os.unlink(os.path.join(self.data, stale_file))
        if restore_from:
            open(os.path.join(self.data, "recovery.signal"), "w").close()

    def initdb(self):
        _run([os.path.join(self.pg_bin, "initdb"), "-U", "postgres", "--auth=trust", "--no-sync", "-D", self.data],
             "initdb of a scratch cluster")

    def start(self, timeout):
        result = subprocess.run(
            [os.path.join(self.pg_bin, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", str(int(timeout)),
             "start"],
            capture_output=True, text=True, check=False)
        self.pid = self._read_pid()
        if result.returncode != 0:
            raise Failure(f"scratch PostgreSQL did not start: {_tail(self.log)}")

    def _read_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as handle:
                return int(handle.readline())
        except (OSError, ValueError):
            return self.pid

    def psql(self, database, sql):
        return _run(
            [os.path.join(self.pg_bin, "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", self.run_dir,
             "-p", str(self.port), "-U", "postgres", "-d", database, "-c", sql],
            f"SQL in scratch database {database}",
        ).strip()

    def wait_promoted(self, timeout):
        """Wait until recovery ended and the cluster accepts writes; a dead postmaster fails at once."""
        deadline = time.monotonic() + timeout
        while True:
            self.pid = self._read_pid()
            if self.pid is None or not _alive(self.pid):
                raise Failure(f"scratch PostgreSQL stopped during recovery: {_tail(self.log)}")
            try:
                if self.psql("postgres", "SELECT pg_is_in_recovery()") == "f":
                    return
            except Failure:
                pass
            if time.monotonic() > deadline:
                raise Failure(f"scratch PostgreSQL still recovering after {timeout:g}s: {_tail(self.log)}")
            time.sleep(0.2)

    def stop(self, mode="immediate"):
        pid = self._read_pid()
        if pid is None:
            return
        subprocess.run([os.path.join(self.pg_bin, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"],
                       capture_output=True, check=False)
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


class ScratchRedis:
    """A redis-server on a unix socket in its own 0700 directory, no TCP port, no saving."""

    def __init__(self, server, cli, directory):
        self.server, self.cli, self.dir = server, cli, directory
        self.socket = os.path.join(directory, "redis.sock")
        self.log = os.path.join(directory, "redis.log")
        self.proc = None

    def start(self, extra, timeout=120):
        argv = [self.server, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
                "--save", "", "--dir", self.dir, "--dbfilename", "dump.rdb", "--daemonize", "no",
                "--logfile", self.log, *extra]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise Failure(f"scratch redis-server exited {self.proc.returncode}: {_tail(self.log)}")
            if os.path.exists(self.socket):
                reply = subprocess.run([self.cli, "-s", self.socket, "PING"], capture_output=True, text=True,
                                       check=False)
                if reply.stdout.strip() == "PONG":
                    return
            if time.monotonic() > deadline:
                raise Failure(f"scratch redis-server not ready after {timeout}s: {_tail(self.log)}")
            time.sleep(0.1)

    def command(self, *words):
        return _run([self.cli, "-e", "-s", self.socket, *words], f"redis {words[0]}").strip()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _scratch_dir(scratch, name):
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    path = os.path.join(scratch, name)
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)
    return path


def _restore_base(root, meta_label, cluster, target_time=None):
    """Extract base/LABEL into the cluster's data dir, configure recovery, start it."""
    os.mkdir(cluster.data, 0o700)
    _safe_extract(os.path.join(root, "base", meta_label, "base.tar.gz"), cluster.data)
    os.chmod(cluster.data, 0o700)
    os.makedirs(os.path.join(cluster.data, "pg_wal", "archive_status"), exist_ok=True)
    cluster.write_config(restore_from=root, target_time=target_time)


def _check_file(root, rel, meta, what):
    path = os.path.join(root, rel)
    if not os.path.exists(path):
        raise Failure(f"{what}: {rel} is missing")
    if meta.get("sha256") and _sha256_file(path) != meta["sha256"]:
        raise Failure(f"{what}: {rel} does not match the sha256 recorded at backup time (corrupted)")
    return path


TABLE_COUNTS_SQL = (
    "SELECT coalesce(json_object_agg(n.nspname || '.' || c.relname, "
    "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), "
    "false, true, '')))[1]::text::bigint), '{}') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%'"
)


# ---------------------------------------------------------------- drill


def drill(args):
    started = _now()
    clock = time.monotonic()
    record = {
        "started_at": iso(started), "finished_at": None, "ok": False, "failures": [],
        "recovery_point_seconds": None, "recovery_time_seconds": None, "base": None,
        "databases": {}, "dumps": {}, "redis": {"rdb": None, "aof": None},
    }
    failures = record["failures"]
    run_dir = None
    started_processes = []  # every scratch server, stopped in finally whatever happened
    try:
        run_dir = _scratch_dir(args.scratch, f"drill-{started.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}")
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
    except Exception as error:  # noqa: BLE001 - the drill must record every run, even one that crashed
        failures.append(f"drill crashed: {type(error).__name__}: {error}")
    finally:
        for process in reversed(started_processes):
            process.stop()
        if run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
    record["finished_at"] = iso(_now())
    record["ok"] = not failures
    os.makedirs(os.path.join(args.root, "drills"), mode=0o750, exist_ok=True)
    _append_line(os.path.join(args.root, "drills", "history.jsonl"), record)
    print(json.dumps(record, indent=2, sort_keys=True))
    for failure in failures:
        sys.stderr.write(f"drill failure: {failure}\n")
    return 0 if record["ok"] else EXIT_FAILED


def _drill_pitr(args, run_dir, record, clock, started):
    bases = _bases(args.root)
    if not bases:
        raise Failure("no complete base backup (base/<LABEL>/meta.json) in the archive")
    label = max(bases, key=lambda key: (bases[key]["finished_at"], key))
    meta = bases[label]
    record["base"] = label
    for name in ("base.tar.gz", "backup_manifest"):
        _check_file(args.root, f"base/{label}/{name}", meta.get("files", {}).get(name, {}), f"base {label}")
    cluster = ScratchPostgres(args.pg_bin, run_dir)
    started.append(cluster)
    _restore_base(args.root, label, cluster)
    cluster.start(args.timeout)
    cluster.wait_promoted(args.timeout)
    problems = []
    segment_size = int(cluster.psql("postgres", "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"))
    archived = _wal_files(args.root)
    gaps = missing_segments(archived, meta["start_wal"], segment_size)
    if gaps:
        problems.append(f"WAL archive is missing segment(s) {', '.join(gaps[:5])} after base {label}")
    replayed = parse_lsn(cluster.psql("postgres", "SELECT pg_last_wal_replay_lsn()") or "0/0")
    newest = max((n for n in archived if re.fullmatch(_SEGMENT, n)), default=None, key=wal_position)
    if newest and replayed // segment_size < segment_number(newest, segment_size):
        stopped_in = segment_name(int(meta["start_wal"][:8], 16), replayed // segment_size, segment_size)
        problems.append(f"recovery stopped in WAL segment {stopped_in}, before the newest archived one {newest}")
    for db, expected in sorted(meta.get("canary", {}).items()):
        entry = {"canary_ok": False, "canary_rows": None, "tables": {}}
        record["databases"][db] = entry
        try:
            got = parse_canary_summary(cluster.psql(db, canary_summary_sql(expected["last_id"])), expected["last_id"])
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


def _drill_dumps(args, run_dir, record, cluster, started):
    dumps = {db: _newest(metas) for db, metas in _dumps(args.root).items()}
    dumps = {db: newest for db, newest in dumps.items() if newest}
    if not dumps:
        raise Failure("no complete dump (dumps/<db>/<STAMP>.json) in the archive")
    if cluster is None or cluster.pid is None or not _alive(cluster.pid):
        # the PITR restore failed: restore the dumps into an empty cluster of their own
        cluster = ScratchPostgres(args.pg_bin, run_dir, os.path.join(run_dir, "dumps-data"))
        started.append(cluster)
        cluster.initdb()
        cluster.write_config()
        cluster.start(args.timeout)
    for index, (db, (stamp, meta)) in enumerate(sorted(dumps.items())):
        rel = f"dumps/{db}/{stamp}.dump"
        entry = {"file": rel, "canary_ok": False, "restore_seconds": None}
        record["dumps"][db] = entry
        try:
            path = _check_file(args.root, rel, meta, f"dump {db}")
            scratch_db = f"codeb_drill_{index}"
            cluster.psql("postgres", f"CREATE DATABASE {scratch_db}")
            began = time.monotonic()
            _run([os.path.join(args.pg_bin, "pg_restore"), "--no-owner", "--no-acl", "--exit-on-error",
                  "-h", cluster.run_dir, "-p", str(cluster.port), "-U", "postgres", "-d", scratch_db, path],
                 f"pg_restore of {rel}")
            entry["restore_seconds"] = round(time.monotonic() - began, 3)
            expected = meta["canary"]
            got = parse_canary_summary(cluster.psql(scratch_db, canary_summary_sql(expected["last_id"])),
                                       expected["last_id"])
            entry["canary_ok"] = got == {k: expected[k] for k in ("last_id", "rows", "checksum")}
            if not entry["canary_ok"]:
                raise Failure(f"canary rows {got} differ from the dump's meta {expected}")
        except (Failure, KeyError) as error:
            record["failures"].append(f"dump {db}: {error}")


def _drill_redis(args, run_dir, record, started):
    redis_dir = os.path.join(args.root, "redis")
    newest = _newest(_metas(redis_dir, "rdb"))
    if newest is None:
        record["failures"].append("redis rdb: no complete RDB snapshot (redis/<STAMP>.json) in the archive")
    else:
        stamp, meta = newest
        entry = {"file": f"redis/{stamp}.rdb", "canary_ok": False, "keys": None}
        record["redis"]["rdb"] = entry
        try:
            source = _check_file(args.root, entry["file"], meta, "redis rdb")
            directory = _scratch_dir(run_dir, "rdb")
            shutil.copyfile(source, os.path.join(directory, "dump.rdb"))
            server = ScratchRedis(args.redis_server, args.redis_cli, directory)
            started.append(server)
            server.start(["--appendonly", "no"])
            _redis_checks(server, meta, entry)
        except Failure as error:
            record["failures"].append(f"redis rdb: {error}")
    meta = _read_json(os.path.join(redis_dir, "aof-latest.json"))
    if not isinstance(meta, dict):
        record["failures"].append("redis aof: no redis/aof-latest.json in the archive")
        return
    entry = {"file": "redis/aof-latest.tar", "canary_ok": False, "keys": None}
    record["redis"]["aof"] = entry
    try:
        source = _check_file(args.root, entry["file"], meta, "redis aof")
        directory = _scratch_dir(run_dir, "aof")
        _safe_extract(source, directory)
        server = ScratchRedis(args.redis_server, args.redis_cli, directory)
        started.append(server)
        server.start(["--appendonly", "yes", "--appenddirname", "appendonlydir"])
        _redis_checks(server, meta, entry)
    except Failure as error:
        record["failures"].append(f"redis aof: {error}")


def _redis_checks(server, meta, entry):
    token = server.command("GET", "codeb:canary")
    entry["keys"] = int(server.command("DBSIZE"))
    entry["canary_ok"] = bool(meta.get("canary_token")) and token == meta["canary_token"]
    if not entry["canary_ok"]:
        raise Failure(f"codeb:canary is {token!r}, the snapshot's meta says {meta.get('canary_token')!r}")


# ---------------------------------------------------------------- restore-pitr


PITR_NAME = re.compile(rf"pitr-{_DB}-{_STAMP}")


def restore_pitr(args):
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
    bases = {label: parse_time(meta["finished_at"]) for label, meta in _bases(args.root).items()}
    if args.to == "latest":
        # Everything archived: the newest base backup, then every WAL segment the archive holds.
        target = None
        if not bases:
            sys.stderr.write("there is no complete base backup to restore from\n")
            return EXIT_USAGE
        label = max(bases, key=lambda key: (bases[key], key))
    else:
        try:
            target = parse_time(args.to)
        except ValueError as error:
            sys.stderr.write(f"--to: {error}\n")
            return EXIT_USAGE
        now = datetime.datetime.now(datetime.UTC)
        if target > now:
            sys.stderr.write(f"--to {iso(target)} is in the future (now {iso(now)})\n")
            return EXIT_USAGE
        before = {label: when for label, when in bases.items() if when < target}
        if not before:
            oldest = min(bases.values()) if bases else None
            sys.stderr.write(
                f"--to {iso(target)} is before the oldest complete base backup "
                f"({iso(oldest) if oldest else 'there is none'}); cannot restore to it\n"
            )
            return EXIT_USAGE
        label = max(before, key=lambda key: (before[key], key))
    name = f"pitr-{args.database}-{_now().strftime('%Y%m%dT%H%M%SZ')}"
    run_dir = _scratch_dir(args.scratch, name)
    cluster = ScratchPostgres(args.pg_bin, run_dir)
    try:
        _restore_base(args.root, label, cluster, target_time=iso(target) if target else None)
        cluster.start(args.timeout)
        cluster.wait_promoted(args.timeout)
        exists = cluster.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{args.database}'")
        if exists != "1":
            raise Failure(f"database {args.database} does not exist at {iso(target) if target else 'the end of the archive'} (base {label})")
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
    info = {"name": name, "socket_dir": run_dir, "port": cluster.port, "database": args.database,
            "target": iso(target) if target else "latest", "base": label, "recovered_to": recovered}
    with open(os.path.join(run_dir, "pitr.json"), "w") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(f"{name}: {args.database} restored to {info['target']} (last transaction replayed {recovered})")
        print(f"connect: psql -h {shlex.quote(run_dir)} -p {cluster.port} -U postgres {args.database}")
        print(f"remove:  codeb-backup restore-pitr --drop {name}")
    return 0


def _pitr_running(args):
    found = []
    for name in _listdir(args.scratch):
        info = _read_json(os.path.join(args.scratch, name, "pitr.json"))
        if PITR_NAME.fullmatch(name) and isinstance(info, dict):
            cluster = ScratchPostgres(args.pg_bin, os.path.join(args.scratch, name))
            pid = cluster._read_pid()
            info["running"] = pid is not None and _alive(pid)
            found.append(info)
    return found


def _pitr_list(args):
    found = _pitr_running(args)
    if args.json:
        print(json.dumps(found, indent=2, sort_keys=True))
    for info in [] if args.json else found:
        state = "running" if info["running"] else "stopped"
        print(f"{info['name']} {state} database={info['database']} target={info['target']} "
              f"psql -h {info['socket_dir']} -p {info['port']} -U postgres {info['database']}")
    if not found and not args.json:
        print("no restore-pitr clusters")
    return 0


def _pitr_drop(args):
    if not PITR_NAME.fullmatch(args.drop):
        sys.stderr.write(f"{args.drop!r} is not a restore-pitr name (pitr-DB-STAMP)\n")
        return EXIT_USAGE
    run_dir = os.path.join(args.scratch, args.drop)
    if not os.path.isdir(run_dir):
        sys.stderr.write(f"no restore-pitr cluster {args.drop} under {args.scratch}\n")
        return EXIT_USAGE
    ScratchPostgres(args.pg_bin, run_dir).stop(mode="fast")
    shutil.rmtree(run_dir)
    print(f"dropped {args.drop}")
    return 0


def audit_heads(args):
    """The audit heads the app server shipped, one `SEQ HASH` a line."""
    for name in sorted(_listdir(os.path.join(args.root, "audit"))):
        seq, _, digest = name.partition("-")
        if seq.isdigit() and re.fullmatch(r"[0-9a-f]{64}", digest):
            print(int(seq), digest)
    return 0


# ---------------------------------------------------------------- cli


def main(argv=None):
    parser = argparse.ArgumentParser(prog="codeb-backup")
    parser.add_argument("--root", default="/srv/backup")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("put", help="store stdin as REL if its sha256 matches")
    p.add_argument("rel")
    p.add_argument("sha256")
    p.add_argument("--replace", action="store_true")
    p = sub.add_parser("prune")
    p.add_argument("--keep-days", type=float, default=7)
    p.add_argument("--rdb-hours", type=float, default=24)
    sub.add_parser("status")
    sub.add_parser("audit-heads")
    for name in ("drill", "restore-pitr"):
        p = sub.add_parser(name)
        p.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin")
        p.add_argument("--scratch", default="/var/lib/codeb-backup/scratch")
        p.add_argument("--timeout", type=float, default=600)
        if name == "drill":
            p.add_argument("--redis-server", default="redis-server")
            p.add_argument("--redis-cli", default="redis-cli")
        else:
            p.add_argument("database", nargs="?")
            p.add_argument("--to")
            p.add_argument("--json", action="store_true")
            p.add_argument("--drop", metavar="NAME")
            p.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    return {"put": put, "prune": prune, "status": status, "drill": drill, "restore-pitr": restore_pitr,
            "audit-heads": audit_heads}[
        args.command](args)


if __name__ == "__main__":
    sys.exit(main())
