"""Scratch servers for restores on the backup server: a PostgreSQL cluster and a redis-server in a
scratch directory each, on unix sockets only, and restoring a base backup into such a cluster."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import tarfile
import time
from typing import Any

from . import codeb_common as common
from .codeb_backup_archive import sha256_file
from .codeb_common import Failure


def conf_value(value: object) -> str:
    """A postgresql.conf string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]).strip()
    except OSError:
        return "(no log)"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


def safe_extract(tar_path: str, destination: str) -> None:
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

    def __init__(self, pg_bin: str, run_dir: str, data_dir: str | None = None) -> None:
        self.pg_bin = pg_bin
        self.run_dir = run_dir
        self.data = data_dir or os.path.join(run_dir, "data")
        self.log = os.path.join(run_dir, "postgres.log")
        self.port = _free_port()
        self.pid: int | None = None

    def write_config(self, restore_from: str | None = None, target_time: str | None = None) -> None:
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

    def initdb(self) -> None:
        common.run(
            [os.path.join(self.pg_bin, "initdb"), "-U", "postgres", "--auth=trust", "--no-sync", "-D", self.data],
            "initdb of a scratch cluster",
        )

    def start(self, timeout: float) -> None:
        result = subprocess.run(
            [
                os.path.join(self.pg_bin, "pg_ctl"),
                "-D",
                self.data,
                "-l",
                self.log,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        self.pid = self._read_pid()
        if result.returncode != 0:
            raise Failure(f"scratch PostgreSQL did not start: {_tail(self.log)}")

    def _read_pid(self) -> int | None:
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as handle:
                return int(handle.readline())
        except (OSError, ValueError):
            return self.pid

    def psql(self, database: str, sql: str) -> str:
        return common.run(
            [
                os.path.join(self.pg_bin, "psql"),
                "-X",
                "-q",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.run_dir,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
            f"SQL in scratch database {database}",
        ).strip()

    def wait_promoted(self, timeout: float) -> None:
        """Wait until recovery ended and the cluster accepts writes; a dead postmaster fails at once."""
        deadline = time.monotonic() + timeout
        while True:
            self.pid = self._read_pid()
            if self.pid is None or not alive(self.pid):
                raise Failure(f"scratch PostgreSQL stopped during recovery: {_tail(self.log)}")
            try:
                if self.psql("postgres", "SELECT pg_is_in_recovery()") == "f":
                    return
            except Failure:
                pass
            if time.monotonic() > deadline:
                raise Failure(f"scratch PostgreSQL still recovering after {timeout:g}s: {_tail(self.log)}")
            time.sleep(0.2)

    def stop(self, mode: str = "immediate") -> None:
        pid = self._read_pid()
        if pid is None:
            return
        subprocess.run(
            [os.path.join(self.pg_bin, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"],
            capture_output=True,
            check=False,
        )
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


class ScratchRedis:
    """A redis-server on a unix socket in its own 0700 directory, no TCP port, no saving."""

    def __init__(self, server: str, cli: str, directory: str) -> None:
        self.server, self.cli, self.dir = server, cli, directory
        self.socket = os.path.join(directory, "redis.sock")
        self.log = os.path.join(directory, "redis.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, extra: list[str], timeout: float = 120) -> None:
        argv = [
            self.server,
            "--port",
            "0",
            "--unixsocket",
            self.socket,
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--dir",
            self.dir,
            "--dbfilename",
            "dump.rdb",
            "--daemonize",
            "no",
            "--logfile",
            self.log,
            *extra,
        ]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise Failure(f"scratch redis-server exited {self.proc.returncode}: {_tail(self.log)}")
            if os.path.exists(self.socket):
                reply = subprocess.run(
                    [self.cli, "-s", self.socket, "PING"], capture_output=True, text=True, check=False
                )
                if reply.stdout.strip() == "PONG":
                    return
            if time.monotonic() > deadline:
                raise Failure(f"scratch redis-server not ready after {timeout}s: {_tail(self.log)}")
            time.sleep(0.1)

    def command(self, *words: str) -> str:
        return common.run([self.cli, "-e", "-s", self.socket, *words], f"redis {words[0]}").strip()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def scratch_dir(scratch: str, name: str) -> str:
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    path = os.path.join(scratch, name)
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)
    return path


def restore_base(root: str, meta_label: str, cluster: ScratchPostgres, target_time: str | None = None) -> None:
    """Extract base/LABEL into the cluster's data dir, configure recovery, start it."""
    os.mkdir(cluster.data, 0o700)
    safe_extract(os.path.join(root, "base", meta_label, "base.tar.gz"), cluster.data)
    os.chmod(cluster.data, 0o700)
    os.makedirs(os.path.join(cluster.data, "pg_wal", "archive_status"), exist_ok=True)
    cluster.write_config(restore_from=root, target_time=target_time)


def check_file(root: str, rel: str, meta: dict[str, Any], what: str) -> str:
    path = os.path.join(root, rel)
    if not os.path.exists(path):
        raise Failure(f"{what}: {rel} is missing")
    if meta.get("sha256") and sha256_file(path) != meta["sha256"]:
        raise Failure(f"{what}: {rel} does not match the sha256 recorded at backup time (corrupted)")
    return path
