#!/usr/bin/env python3
"""codeb-env: the app server's versioned env store (standard library only).

    /opt/codeb/env-backup/{project}/{env}/{N}.env   every version, root 0600, kept forever
    /opt/codeb/env-backup/{project}/{env}/index.json time, actor, names, digest of each version
    /opt/codeb/env/{project}/{env}.env               the live file new slots read

`commit` takes a version the controller uploaded (content and index entry, both 0600 files; values
never pass through a command line), stores it, writes the live file and ships the version and the
index to the backup server. `ship` retries what did not reach it; `fetch` brings the store back
from the backup server. Exit 0 done, 1 failed, 2 bad input, 3 another change came first,
5 stored here but not on the backup server.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from typing import Any

EXIT_FAILED, EXIT_USAGE, EXIT_CONFLICT, EXIT_NOT_SHIPPED = 1, 2, 3, 5
DEFAULT_SHIP = [
    "ssh",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "codeb-backup",
    "/usr/local/lib/codeb/codeb-backup",
]
PROJECT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
ENV = re.compile(r"production|staging")


class Failure(Exception):
    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _makedirs(directory: str) -> None:
    """Every missing level root-only (os.makedirs gives ``mode`` to the last one only)."""
    if directory and not os.path.isdir(directory):
        _makedirs(os.path.dirname(directory))
        os.mkdir(directory, 0o700)


def _write(path: str, data: bytes, mode: int = 0o600) -> None:
    """Atomically: a temp file of ``mode`` in the same directory, fsynced, renamed over ``path``."""
    directory = os.path.dirname(path)
    _makedirs(directory)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_index(store: str) -> Any:
    try:
        with open(os.path.join(store, "index.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {"versions": []}


def _index_bytes(index: Any) -> bytes:
    return (json.dumps(index, indent=1, sort_keys=True) + "\n").encode()


class Store:
    def __init__(self, args: argparse.Namespace) -> None:
        if not PROJECT.fullmatch(args.project) or not ENV.fullmatch(args.env):
            raise Failure(f"invalid project {args.project!r} or env {args.env!r}", EXIT_USAGE)
        self.project, self.env = args.project, args.env
        self.dir = os.path.join(args.root, "env-backup", args.project, args.env)
        self.live = os.path.join(args.root, "env", args.project, f"{args.env}.env")
        override = os.environ.get("CODEB_SHIP")
        self.ship_argv = shlex.split(override) if override else DEFAULT_SHIP

    def version_file(self, number: int) -> str:
        return os.path.join(self.dir, f"{int(number)}.env")

    def rel(self, name: str) -> str:
        return f"env/{self.project}/{self.env}/{name}"

    def remote(self, arguments: list[str], data: bytes | None = None) -> bytes:
        result = subprocess.run(self.ship_argv + arguments, input=data, capture_output=True, check=False, timeout=120)
        if result.returncode != 0:
            detail = " / ".join((result.stderr or result.stdout).decode(errors="replace").strip().splitlines()[-3:])
            raise Failure(
                f"backup server: {' '.join(arguments[:2])} failed (exit {result.returncode}): {detail}",
                EXIT_NOT_SHIPPED,
            )
        return result.stdout

    def put(self, name: str, data: bytes, replace: bool = False) -> None:
        self.remote(["put", self.rel(name), _sha256_bytes(data)] + (["--replace"] if replace else []), data)


def commit(args: argparse.Namespace) -> int:
    store = Store(args)
    with open(args.content, "rb") as handle:
        content = handle.read()
    with open(args.entry, encoding="utf-8") as handle:
        entry = json.load(handle)
    index = _read_index(store.dir)
    versions = index["versions"]
    expected = versions[-1]["version"] + 1 if versions else 1
    if entry.get("version") != expected:
        raise Failure(
            f"{store.project}/{store.env}: env version {expected - 1} changed meanwhile "
            f"(this change was planned as version {entry.get('version')}); run it again",
            EXIT_CONFLICT,
        )
    if _sha256_bytes(content) != entry.get("digest"):
        raise Failure("the uploaded env file does not match its digest (upload cut short?); nothing stored")
    entry["shipped"] = False
    _write(store.version_file(expected), content)
    versions.append(entry)
    _write(os.path.join(store.dir, "index.json"), _index_bytes(index))
    _write(store.live, content)
    for path in (args.content, args.entry):
        os.unlink(path)
    print(f"{store.project}/{store.env}: env version {expected} stored and live")
    return ship(args)


def ship(args: argparse.Namespace) -> int:
    """Every version not yet on the backup server, then the index that says so."""
    store = Store(args)
    index = _read_index(store.dir)
    pending = [v for v in index["versions"] if not v.get("shipped")]
    if not pending:
        print(f"{store.project}/{store.env}: every env version is on the backup server")
        return 0
    try:
        for version in pending:
            with open(store.version_file(version["version"]), "rb") as handle:
                store.put(f"{version['version']}.env", handle.read())
        shipped = json.loads(json.dumps(index))
        for version in shipped["versions"]:
            version["shipped"] = True
        store.put("index.json", _index_bytes(shipped), replace=True)
    except Failure as error:
        numbers = ", ".join(str(v["version"]) for v in pending)
        raise Failure(
            f"LOUD: {store.project}/{store.env} env version(s) {numbers} are stored and live on this server but NOT "
            f"on the backup server ({error}); the next env command for it ships them again",
            EXIT_NOT_SHIPPED,
        ) from None
    _write(os.path.join(store.dir, "index.json"), _index_bytes(shipped))
    print(
        f"{store.project}/{store.env}: env version(s) {', '.join(str(v['version']) for v in pending)} "
        "copied to the backup server"
    )
    return 0


def fetch(args: argparse.Namespace) -> int:
    """The store from the backup server: its index and every version this server lacks."""
    store = Store(args)
    try:
        remote_index = json.loads(store.remote(["get", store.rel("index.json")]))
    except Failure as error:
        raise Failure(
            f"{store.project}/{store.env}: no env store on the backup server to restore from ({error})"
        ) from None
    local = {v["version"] for v in _read_index(store.dir)["versions"]}
    fetched = []
    for version in remote_index["versions"]:
        path = store.version_file(version["version"])
        if version["version"] in local and os.path.exists(path):
            continue
        data = store.remote(["get", store.rel(f"{version['version']}.env")])
        if _sha256_bytes(data) != version["digest"]:
            raise Failure(f"backup copy of env version {version['version']} does not match its digest; not restored")
        _write(path, data)
        fetched.append(version["version"])
    for version in remote_index["versions"]:
        version["shipped"] = True
    _write(os.path.join(store.dir, "index.json"), _index_bytes(remote_index))
    print(
        f"{store.project}/{store.env}: fetched env version(s) {', '.join(map(str, fetched)) or 'none'}"
        " from the backup server"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeb-env")
    parser.add_argument("--root", default="/opt/codeb")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("commit", "ship", "fetch"):
        p = sub.add_parser(name)
        p.add_argument("--project", required=True)
        p.add_argument("--env", required=True)
        if name == "commit":
            p.add_argument("--content", required=True, help="uploaded env file (0600)")
            p.add_argument("--entry", required=True, help="uploaded index entry (JSON)")
    args = parser.parse_args(argv)
    try:
        return {"commit": commit, "ship": ship, "fetch": fetch}[args.command](args)
    except Failure as error:
        sys.stderr.write(f"{error}\n")
        return error.status


if __name__ == "__main__":
    sys.exit(main())
