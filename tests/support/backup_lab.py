"""A storage server and a backup server in miniature for the backup tools' tests.

A real PostgreSQL 15 cluster (archive_mode=on, archive_command = codeb-storage archive-wal) and a real
redis-server (AOF on, password), both on this machine only: PostgreSQL on a unix socket, Redis on a
loopback port. PostgreSQL refuses to run as root, so the cluster, codeb-storage's postgres-side
commands and codeb-backup all run as an unprivileged user, the way postgres and codeb-backup do on
the servers; Redis and redis-snapshot run as root, as there.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from codeb_infra.remote import PACKAGED_TOOLS, tool_files
from tests.support.net import LOOPBACK, free_loopback_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "codeb-pgtest"
SERVER_PYTHON = "/usr/bin/python3"  # Debian's own interpreter, the one the servers run the tools with


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ],
            check=True,
        )
        return pwd.getpwnam(USER)


def as_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *argv]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class BackupLab:
    """Directories, the live cluster, Redis and the two tools, under one short /tmp directory."""

    def __init__(self) -> None:
        self.account = ensure_user()
        # short (unix socket paths are limited to ~107 bytes) and reachable for the test user
        self.base = Path(tempfile.mkdtemp(prefix="codeb-bt-", dir="/tmp"))
        self.root = self.base / "backup"
        self.scratch = self.base / "scratch"
        self.work = self.base / "work"
        self.pgdata = self.base / "live"
        self.redis_dir = self.base / "redis"
        self.password_file = self.base / "redis.password"
        self.tools = self.base / "bin"
        self.port = free_loopback_port()
        self.redis_port = free_loopback_port()
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.pg_started = False

    # -- paths and commands

    @property
    def storage_tool(self) -> str:
        return str(self.tools / "codeb-storage")

    @property
    def backup_tool(self) -> str:
        return str(self.tools / "codeb-backup")

    def ship_command(self, root: Path | None = None, *, as_test_user: bool = False) -> str:
        argv = [SERVER_PYTHON, self.backup_tool, "--root", str(root or self.root), "put"]
        return shlex.join(as_user(argv) if as_test_user else argv)

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "REDISCLI"))}
        env.update(
            PGHOST=str(self.base),
            PGPORT=str(self.port),
            PGUSER="postgres",
            HOME=str(self.base),
            CODEB_SHIP=self.ship_command(),
        )
        env.update(extra)
        return env

    def storage(self, *args: str, root: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
        """codeb-storage as the test user (the servers' postgres) or, with root=True, as root."""
        argv = [
            SERVER_PYTHON,
            self.storage_tool,
            "--pg-bin",
            str(PG_BIN),
            "--pgdata",
            str(self.pgdata),
            "--work-dir",
            str(self.work),
            "--redis-port",
            str(self.redis_port),
            "--redis-password-file",
            str(self.password_file),
            "--redis-dir",
            str(self.redis_dir),
            *args,
        ]
        if root:
            env.setdefault("CODEB_SHIP", self.ship_command(as_test_user=True))
        return subprocess.run(
            argv if root else as_user(argv),
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=300,
            check=False,
        )

    def backup(self, *args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
        """codeb-backup as the test user (the servers' codeb-backup)."""
        argv = [SERVER_PYTHON, self.backup_tool, "--root", str(root or self.root), *args]
        return subprocess.run(as_user(argv), capture_output=True, text=True, env=self.env(), timeout=300, check=False)

    def backup_scratch(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.backup(command, "--pg-bin", str(PG_BIN), "--scratch", str(self.scratch), *args)

    def psql(self, database: str, sql: str, *, host: str | None = None, port: int | None = None) -> str:
        result = subprocess.run(
            as_user(
                [
                    str(PG_BIN / "psql"),
                    "-X",
                    "-q",
                    "-tA",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    host or str(self.base),
                    "-p",
                    str(port or self.port),
                    "-U",
                    "postgres",
                    "-d",
                    database,
                    "-c",
                    sql,
                ]
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def redis_cli(self, *words: str) -> str:
        env = dict(os.environ, REDISCLI_AUTH=self.password_file.read_text().strip())
        result = subprocess.run(
            ["redis-cli", "-e", "-h", LOOPBACK, "-p", str(self.redis_port), *words],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.strip()

    def meta(self, rel: str) -> dict:
        return json.loads((self.root / rel).read_text())

    # -- lifecycle

    def start(self) -> None:
        for tool in PACKAGED_TOOLS:  # laid out as the storage and backup roles install them
            for source, dest in tool_files(tool):
                (self.tools / dest).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, self.tools / dest)
        for path in (self.root, self.scratch, self.work, self.redis_dir):
            path.mkdir()
        self.password_file.write_text("test-" + os.urandom(8).hex() + "\n")
        uid, gid = self.account.pw_uid, self.account.pw_gid
        for path in (self.base, self.root, self.scratch, self.work, self.password_file):
            os.chown(path, uid, gid)
        os.chmod(self.base, 0o755)
        os.chmod(self.password_file, 0o600)
        self._start_postgres()
        self._start_redis()

    def _start_postgres(self) -> None:
        subprocess.run(
            as_user([str(PG_BIN / "initdb"), "-U", "postgres", "--auth=trust", "--no-sync", "-D", str(self.pgdata)]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        archive = shlex.join([SERVER_PYTHON, self.storage_tool, "archive-wal"]) + " %p %f"
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = ''\nunix_socket_directories = '{self.base}'\n"
                "archive_mode = on\n"
                f"archive_command = '{archive.replace(chr(39), chr(39) * 2)}'\n"
                "fsync = off\nshared_buffers = 32MB\nmax_wal_size = 256MB\n"
            )
        subprocess.run(
            as_user(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.base / "live.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            env=self.env(),
            timeout=120,
        )
        self.pg_started = True

    def _start_redis(self) -> None:
        password = self.password_file.read_text().strip()
        config = self.redis_dir / "redis.conf"  # the password goes in a file, not on the command line
        config.write_text(
            f"bind {LOOPBACK}\nport {self.redis_port}\nrequirepass {password}\nappendonly yes\n"
            f'dir {self.redis_dir}\ndbfilename dump.rdb\nsave ""\ndaemonize no\n'
            f"logfile {self.redis_dir / 'redis.log'}\n"
        )
        self.redis_proc = subprocess.Popen(
            ["redis-server", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.redis_cli("PING") == "PONG":
                    return
            except AssertionError:
                pass
            assert self.redis_proc.poll() is None, (self.redis_dir / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop everything this lab or the tools started under its directory, then remove it."""
        try:
            if self.redis_proc is not None and self.redis_proc.poll() is None:
                self.redis_proc.terminate()
                try:
                    self.redis_proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.redis_proc.kill()
                    self.redis_proc.wait()
            if self.pg_started:
                subprocess.run(
                    as_user([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "immediate", "-w", "stop"]),
                    capture_output=True,
                    timeout=120,
                    check=False,
                )
            for pid in self.leftover_pids():  # a restore-pitr cluster a failed test left running
                os.kill(pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def leftover_pids(self) -> list[int]:
        """Processes (other than zombies) whose command line mentions the scratch directory."""
        found = []
        needle = str(self.scratch).encode()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as handle:
                        cmdline = handle.read()
                except OSError:
                    continue
                if needle in cmdline and alive(int(entry)):
                    found.append(int(entry))
        return found

    # -- the live cluster

    def switch_wal(self, timeout: float = 60) -> str:
        """Write something, switch WAL and wait until the finished segment is in the archive and
        PostgreSQL has recorded it as archived (it does so only after archive_command returns, a
        moment after the file appears)."""
        self.psql(
            "postgres",
            "CREATE TABLE IF NOT EXISTS ticks (at timestamptz DEFAULT now()); INSERT INTO ticks DEFAULT VALUES",
        )
        segment = self.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + timeout
        recorded = f"SELECT coalesce(last_archived_wal, '') >= '{segment}' FROM pg_stat_archiver"
        while not (self.root / "wal" / segment).exists() or self.psql("postgres", recorded) != "t":
            if time.monotonic() > deadline:
                archiver = self.psql("postgres", "SELECT * FROM pg_stat_archiver")
                raise AssertionError(f"{segment} not archived within {timeout:g}s: {archiver}")
            time.sleep(0.1)
        return segment
