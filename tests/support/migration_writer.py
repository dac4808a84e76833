"""A writer that runs on the app server during a storage migration (standard library only).

It writes sequence-numbered rows (through psql) and Redis keys (through a small RESP client) at a
steady rate, using the project's master env for its addresses and credentials, as a slot does:
when a write fails it reads the master env again, reconnects and retries the same number. Each
write counts as acknowledged only when the server answered it; every acknowledgement is logged
with its time, so a test can compare acknowledged writes with what the new server holds.

    python3 migration_writer.py MASTER_ENV OUT_DIR RATE
Stops when OUT_DIR/stop exists.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from typing import TextIO
from urllib.parse import unquote, urlsplit


def read_env(path: str) -> dict[str, str]:
    values = {}
    with open(path) as handle:
        for line in handle:
            key, _, value = line.strip().partition("=")
            if key and not key.startswith("#"):
                values[key] = value
    return values


class Postgres:
    def __init__(self, url: str) -> None:
        env = {**os.environ, "PGCONNECT_TIMEOUT": "2"}
        parts = urlsplit(url)
        env["PGPASSWORD"] = unquote(parts.password or "")
        plain = f"postgresql://{parts.username}@{parts.hostname}:{parts.port or 5432}{parts.path}"
        self.process = subprocess.Popen(
            ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", plain],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            bufsize=1,
        )

    def insert(self, seq: int) -> bool:
        assert self.process.stdin and self.process.stdout
        try:
            self.process.stdin.write(f"INSERT INTO migration_writes (seq) VALUES ({seq}) RETURNING seq;\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        ready, _, _ = select.select([self.process.stdout], [], [], 3)
        if not ready:
            return False
        return self.process.stdout.readline().strip() == str(seq)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


class Redis:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 6379), timeout=2)
        self.reader = self.sock.makefile("rb")
        if self.call("AUTH", unquote(parts.username or "default"), unquote(parts.password or "")) != b"+OK":
            raise OSError("AUTH refused")

    def call(self, *words: str) -> bytes:
        payload = f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
        self.sock.sendall(payload.encode())
        return self.reader.readline().rstrip(b"\r\n")

    def close(self) -> None:
        self.sock.close()


def main() -> None:
    env_path, out_dir, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    prefix = read_env(env_path).get("REDIS_KEY_PREFIX", "")
    with (
        open(os.path.join(out_dir, "rows.log"), "a", buffering=1) as rows,
        open(os.path.join(out_dir, "keys.log"), "a", buffering=1) as keys,
    ):
        write(env_path, out_dir, rate, prefix, rows, keys)


def write(env_path: str, out_dir: str, rate: float, prefix: str, rows: TextIO, keys: TextIO) -> None:
    postgres: Postgres | None = None
    redis: Redis | None = None
    seq, key_seq = 1, 1
    next_at = time.monotonic()
    while not os.path.exists(os.path.join(out_dir, "stop")):
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += 1 / rate
        env = read_env(env_path)
        if postgres is None:
            postgres = Postgres(env["DATABASE_URL"])
        if postgres.insert(seq):
            rows.write(f"{seq} {time.time():.3f}\n")
            seq += 1
        else:
            postgres.close()
            postgres = None
        try:
            if redis is None:
                redis = Redis(env["REDIS_URL"])
            if redis.call("SET", f"{prefix}mig:{key_seq}", str(key_seq)) == b"+OK":
                keys.write(f"{key_seq} {time.time():.3f}\n")
                key_seq += 1
            else:
                redis.close()
                redis = None
        except OSError:
            if redis is not None:
                redis.close()
            redis = None


if __name__ == "__main__":
    main()
