#!/usr/bin/env python3
"""codeb-pdns: the app server's client of the PowerDNS HTTP API; standard library only.

It reads the API key from its root-only file and sends it as a header, so the key never appears
on a command line, in a process list or in pyinfra's output. Request bodies come base64-encoded
as arguments; answers are printed as JSON; failures are one line on stderr saying what to do.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import grp
import hashlib
import hmac
import json
import os
import pwd
import secrets
import sqlite3
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

EXIT_UNREACHABLE = 2
EXIT_UNAUTHORIZED = 3
EXIT_REFUSED = 4
SCRYPT = {"ln": 10, "r": 8, "p": 1}  # what `pdnsutil hash-password` uses


class Failure(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _key(path: str) -> str:
    try:
        with open(path) as handle:
            key = handle.read().strip()
    except OSError as error:
        raise Failure(
            f"cannot read the PowerDNS API key file {path} ({error.strerror}): "
            "run the DNS bootstrap (codeb_infra.roles.dns.powerdns) first",
            EXIT_UNAUTHORIZED,
        ) from None
    if not key:
        raise Failure(f"the PowerDNS API key file {path} is empty: run the DNS bootstrap again", EXIT_UNAUTHORIZED)
    return key


def request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    url = f"{args.url.rstrip('/')}/api/v1/servers/{urllib.parse.quote(args.server_id)}{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("X-API-Key", _key(args.key_file))
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text.strip() else None)
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace").strip()
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("error", detail)
        if error.code in (401, 403):
            raise Failure(
                f"PowerDNS API at {args.url} refused the key in {args.key_file} (HTTP {error.code}): "
                "pdns runs with another api-key; run the DNS bootstrap again (it writes the key's hash "
                "into pdns's config), then restart pdns if it still refuses",
                EXIT_UNAUTHORIZED,
            ) from None
        return error.code, {"error": detail or error.reason}
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise Failure(
            f"PowerDNS API at {args.url} is not answering ({reason}): is pdns running "
            "(systemctl status pdns) with api=yes and this webserver address and port?",
            EXIT_UNREACHABLE,
        ) from None


def _zone_path(zone: str) -> str:
    return "/zones/" + urllib.parse.quote(zone, safe=".")


def _payload(text: str) -> Any:
    try:
        return json.loads(base64.b64decode(text, validate=True))
    except ValueError as error:
        raise Failure(f"bad --payload (expected base64 JSON): {error}", EXIT_REFUSED) from None


def _refused(what: str, status: int, body: Any) -> Failure:
    message = body.get("error") if isinstance(body, dict) else body
    return Failure(f"PowerDNS refused to {what} (HTTP {status}): {message}", EXIT_REFUSED)


def _unconfigured(args: argparse.Namespace) -> bool:
    """Reads before the bootstrap made a key: report "no zones" rather than fail the whole run."""
    return args.unconfigured_ok and not os.path.exists(args.key_file)


def zones(args: argparse.Namespace) -> None:
    if _unconfigured(args):
        print("[]")
        return
    status, body = request(args, "GET", "/zones")
    if status != 200:
        raise _refused("list zones", status, body)
    print(json.dumps(body, sort_keys=True))


def zone(args: argparse.Namespace) -> None:
    if _unconfigured(args):
        print("null")
        return
    status, body = request(args, "GET", _zone_path(args.zone))
    if status == 404:
        print("null")  # no such zone
        return
    if status != 200:
        raise _refused(f"read zone {args.zone}", status, body)
    print(json.dumps(body, sort_keys=True))


def create_zone(args: argparse.Namespace) -> None:
    payload = _payload(args.payload)
    status, body = request(args, "POST", "/zones", payload)
    if status != 201:
        raise _refused(f"create zone {payload.get('name')}", status, body)
    print(f"created zone {body.get('name')} serial {body.get('serial')}")


def patch(args: argparse.Namespace) -> None:
    status, body = request(args, "PATCH", _zone_path(args.zone), _payload(args.payload))
    if status == 404:
        raise Failure(f"zone {args.zone} does not exist in PowerDNS: create it with powerdns.zone first", EXIT_REFUSED)
    if status != 204:
        raise _refused(f"change zone {args.zone}", status, body)
    print(f"changed zone {args.zone}")


def _hash(key: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(key.encode(), salt=salt, n=2 ** SCRYPT["ln"], r=SCRYPT["r"], p=SCRYPT["p"], dklen=32)
    params = ",".join(f"{name}={SCRYPT[name]}" for name in ("ln", "p", "r"))
    return f"$scrypt${params}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _matches(key: str, hashed: str) -> bool:
    try:
        _, scheme, params, salt, digest = hashed.split("$")
        values = dict(part.split("=") for part in params.split(","))
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            key.encode(),
            salt=base64.b64decode(salt),
            n=2 ** int(values["ln"]),
            r=int(values["r"]),
            p=int(values["p"]),
            dklen=len(base64.b64decode(digest)),
        )
        return hmac.compare_digest(computed, base64.b64decode(digest))
    except (ValueError, KeyError):
        return False


def _configured_hash(conf: str) -> str | None:
    try:
        with open(conf) as handle:
            for line in handle:
                if line.startswith("api-key="):
                    return line.split("=", 1)[1].strip()
    except FileNotFoundError:
        return None
    return None


def _write(path: str, text: str, mode: int, gid: int | None = None) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, mode)
        if gid is not None:
            os.fchown(fd, 0, gid)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def key_state(args: argparse.Namespace) -> str:
    """`ok` when the key file is private and pdns's config holds its hash; else what is wrong."""
    try:
        stat = os.stat(args.key_file)
    except FileNotFoundError:
        return "missing"
    if stat.st_mode & 0o077:
        return "exposed"
    hashed = _configured_hash(args.conf)
    if hashed is None:
        return "unconfigured"
    return "ok" if _matches(_key(args.key_file), hashed) else "mismatch"


def api_key(args: argparse.Namespace) -> None:
    """Create the key once (0600), then keep pdns's api-key line (in its own 0640 file) its hash."""
    state = key_state(args)
    if args.check:
        print(state)
        return
    if state == "ok":
        print("unchanged")
        return
    os.makedirs(os.path.dirname(args.key_file), mode=0o700, exist_ok=True)
    if state == "missing":
        _write(args.key_file, secrets.token_urlsafe(32) + "\n", 0o600)
    os.chmod(args.key_file, 0o600)
    gid = grp.getgrnam(args.group).gr_gid if args.group else None
    os.makedirs(os.path.dirname(args.conf), exist_ok=True)
    text = (
        f"# The hash of the PowerDNS API key kept in {args.key_file} (written by codeb-pdns).\n"
        f"api-key={_hash(_key(args.key_file))}\n"
    )
    _write(args.conf, text, 0o640, gid)
    print("written")


def sqlite_schema(args: argparse.Namespace) -> None:
    """Create pdns's gsqlite3 database from the packaged schema; put in place only once complete."""
    if os.path.exists(args.database):
        print("exists")
        return
    with open(args.schema) as handle:
        schema = handle.read()
    tmp = f"{args.database}.new"
    if os.path.exists(tmp):
        os.unlink(tmp)
    connection = sqlite3.connect(tmp)
    try:
        connection.executescript(schema)
        connection.commit()
    finally:
        connection.close()
    os.chmod(tmp, 0o640)
    if args.owner:
        os.chown(tmp, pwd.getpwnam(args.owner).pw_uid, grp.getgrnam(args.owner).gr_gid)
    os.replace(tmp, args.database)
    print("created")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeb-pdns")
    parser.add_argument("--url", default="http://127.0.0.1:8081")
    parser.add_argument("--key-file", default="/etc/codeb/secrets/pdns-api.key")
    parser.add_argument("--server-id", default="localhost")
    parser.add_argument("--timeout", type=float, default=10.0)
    sub = parser.add_subparsers(dest="command", required=True)
    unconfigured = "print no zones when the key file does not exist yet (before the bootstrap)"
    sub.add_parser("zones").add_argument("--unconfigured-ok", action="store_true", help=unconfigured)
    p = sub.add_parser("zone")
    p.add_argument("--zone", required=True)
    p.add_argument("--unconfigured-ok", action="store_true", help=unconfigured)
    sub.add_parser("create-zone").add_argument("--payload", required=True, help="base64 JSON zone")
    p = sub.add_parser("patch")
    p.add_argument("--zone", required=True)
    p.add_argument("--payload", required=True, help="base64 JSON {rrsets: [...]}")
    p = sub.add_parser("api-key")
    p.add_argument("--conf", required=True, help="pdns config file that gets the api-key line")
    p.add_argument("--group", default="pdns", help="group that may read --conf (pdns runs as it)")
    p.add_argument(
        "--check", action="store_true", help="only print the state: ok, missing, exposed, unconfigured, mismatch"
    )
    p = sub.add_parser("sqlite-schema")
    p.add_argument("--database", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--owner", default="pdns", help="user and group that own the database (pdns runs as them)")
    args = parser.parse_args(argv)
    handlers = {
        "zones": zones,
        "zone": zone,
        "create-zone": create_zone,
        "patch": patch,
        "api-key": api_key,
        "sqlite-schema": sqlite_schema,
    }
    try:
        handlers[args.command](args)
    except Failure as failure:
        sys.stderr.write(f"codeb-pdns: {failure}\n")
        return failure.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
