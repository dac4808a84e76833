#!/usr/bin/env python3
"""codeb-health: what a server can tell about its own health, as one JSON document per call.

`read` reports systemd units, disk, memory, the clock, listening sockets and the mesh's handshakes
on every server, and on the app server
the registry, the codeb containers, upstream pointers (and whether their port answers), Caddy
sites, Quadlet units and deploy locks. `probe` asks Caddy for a domain's health path over HTTPS
with the domain as SNI and Host (as a visitor would), checks its certificate, and asks the local
PowerDNS for the domain's A records. `reach` says whether the PostgreSQL and Redis servers that
env files name answer from here (a deploy asks before it starts a slot). Reads only; standard
library only. The verdicts are made on the controller (codeb_infra/domain/health.py).
"""

import argparse
import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from typing import Any

UNIT_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "NRestarts",
    "StateChangeTimestamp",
    "ExecMainStatus",
    "ExecMainExitTimestamp",
    "Type",
)


def units(names: list[str]) -> dict[str, dict[str, str]]:
    """One `systemctl show` for every unit; timestamps as unix seconds."""
    if not names:
        return {}
    command = ["systemctl", "show", "--timestamp=unix", "-p", ",".join(UNIT_PROPERTIES), "--", *names]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    found: dict[str, dict[str, str]] = {}
    for block in result.stdout.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            found[props["Id"]] = props
    return found


def disks(paths: list[str]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for path in paths:
        try:
            stat = os.statvfs(path)
        except OSError:
            continue
        total, free = stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize
        found[path] = {
            "used_percent": round(100.0 * (total - free) / total, 1) if total else 0.0,
            "inodes_used_percent": round(100.0 * (stat.f_files - stat.f_favail) / stat.f_files, 1)
            if stat.f_files
            else 0.0,
            "free_bytes": free,
        }
    return found


def memory() -> dict[str, int | None]:
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return {"total_bytes": values.get("MemTotal"), "available_bytes": values.get("MemAvailable")}


def _json_file(path: str) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        return {"error": f"{path}: {error}"}


def _listing(directory: str, suffix: str) -> list[str]:
    try:
        return sorted(name[: -len(suffix)] for name in os.listdir(directory) if name.endswith(suffix))
    except FileNotFoundError:
        return []


def answers(address: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def containers() -> dict[str, str] | list[dict[str, Any]]:
    command = ["podman", "ps", "--all", "--format", "json", "--filter", "label=codeb.project"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        rows = json.loads(result.stdout or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        return {"error": str(error)}
    return [
        {
            "name": (row.get("Names") or ["?"])[0],
            "state": row.get("State"),
            "labels": row.get("Labels") or {},
            "started_at": row.get("StartedAt"),
            "exited_at": row.get("ExitedAt"),
        }
        for row in rows or []
    ]


def app_state(args: argparse.Namespace) -> dict[str, Any]:
    pointers: dict[str, dict[str, Any]] = {}
    for name in sorted(os.listdir(args.upstreams)) if os.path.isdir(args.upstreams) else []:
        path = os.path.join(args.upstreams, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        with open(path) as handle:
            address = handle.read().strip()
        pointers[name] = {"address": address, "answers": answers(address)}
    locks: dict[str, dict[str, Any]] = {}
    for name in _listing(args.locks, ".lock"):
        path = os.path.join(args.locks, f"{name}.lock")
        held = _json_file(path) or {}
        locks[name] = {"holder": held.get("holder"), "since": held.get("since"), "mtime": os.path.getmtime(path)}
    return {
        "projects": _json_file(os.path.join(args.registry, "ssot.json")),
        "slots": _json_file(os.path.join(args.registry, "slots.json")),
        "containers": containers(),
        "pointers": pointers,
        "sites": _listing(args.sites, ".caddy"),
        "quadlet": _listing(args.quadlet, ".container"),
        "locks": locks,
    }


# /proc/net/* socket states: a listening TCP socket, an unconnected (bound) UDP socket.
SOCKET_TABLES = (
    ("tcp", "/proc/net/tcp", "0A"),
    ("tcp", "/proc/net/tcp6", "0A"),
    ("udp", "/proc/net/udp", "07"),
    ("udp", "/proc/net/udp6", "07"),
)


def _socket_address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    # IPv6: four 32-bit words, each in the kernel's (little-endian) byte order
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words), int(port, 16)


def listeners() -> list[dict[str, Any]]:
    """Every listening TCP socket and bound UDP socket of this server's network namespace."""
    found = set()
    for proto, path, state in SOCKET_TABLES:
        try:
            with open(path) as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == state:
                found.add((proto, *_socket_address(fields[1])))
    return [{"proto": proto, "address": address, "port": port} for proto, address, port in sorted(found)]


def wireguard(interface: str) -> dict[str, Any]:
    """The interface's own public key and each peer's latest handshake (epoch seconds, 0: never)."""
    try:
        key = subprocess.run(["wg", "show", interface, "public-key"], capture_output=True, text=True, timeout=10)
        shakes = subprocess.run(
            ["wg", "show", interface, "latest-handshakes"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"up": False, "error": str(error)[:200]}
    if key.returncode != 0 or shakes.returncode != 0:
        return {"up": False, "error": (key.stderr or shakes.stderr).strip()[:200]}
    handshakes = {}
    for line in shakes.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            handshakes[parts[0]] = int(parts[1])
    return {"up": True, "public_key": key.stdout.strip(), "handshakes": handshakes}


DATA_PORTS = {"DATABASE_URL": 5432, "REDIS_URL": 6379}


def _env_values(paths: list[str], wanted: tuple[str, ...]) -> dict[str, str]:
    """The last value of each wanted name across the env files (a later file wins, as for podman)."""
    found: dict[str, str] = {}
    for path in paths:
        try:
            with open(path) as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        for line in lines:
            name, sep, value = line.partition("=")
            if sep and name.strip() in wanted:
                found[name.strip()] = value.strip().strip("'\"")
    return found


def reach(args: argparse.Namespace) -> dict[str, Any]:
    """Whether the data servers the env files name answer from here: host and port only, never the
    URL (it holds the password)."""
    import urllib.parse

    report: dict[str, Any] = {}
    for name, url in sorted(_env_values(args.env_file, tuple(DATA_PORTS)).items()):
        try:
            parsed = urllib.parse.urlsplit(url)
            host, port = parsed.hostname, parsed.port or DATA_PORTS[name]
        except ValueError:
            report[name] = {"ok": False, "address": "", "error": "not a URL"}
            continue
        if not host:
            report[name] = {"ok": False, "address": "", "error": "no host in the URL"}
            continue
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            socket.create_connection((host, port), timeout=args.timeout).close()
            report[name] = {"ok": True, "address": address}
        except OSError as error:
            report[name] = {"ok": False, "address": address, "error": str(error) or type(error).__name__}
    return report


def read(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "time": time.time(),
        "units": units(args.unit),
        "disks": disks(args.disk),
        "memory": memory(),
        "listeners": listeners(),
    }
    if args.wireguard:
        report["wireguard"] = wireguard(args.wireguard)
    if args.registry:
        report["app"] = app_state(args)
    return report


def _context(cafiles: list[str]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for cafile in cafiles:
        if os.path.exists(cafile):
            context.load_verify_locations(cafile)
    return context


def _get(
    address: str, port: int, domain: str, path: str, context: ssl.SSLContext | None, timeout: float
) -> tuple[int | None, Any]:
    """HTTP/1.1 GET of path at domain through address:port; (status, peer certificate)."""
    with socket.create_connection((address, port), timeout=timeout) as raw:
        stream, cert = raw, None
        if context:
            stream = context.wrap_socket(raw, server_hostname=domain)
            cert = stream.getpeercert()
        request = f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nUser-Agent: codeb-health\r\nConnection: close\r\n\r\n"
        stream.sendall(request.encode())
        status_line = stream.makefile("rb").readline().decode("latin-1")
        parts = status_line.split()
        return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None), cert


def probe_one(domain: str, path: str, args: argparse.Namespace, context: ssl.SSLContext | None) -> dict[str, Any]:
    result: dict[str, Any] = {"domain": domain, "path": path}
    try:
        if args.scheme == "http":
            result["status"], _ = _get(args.address, args.port, domain, path, None, args.timeout)
            return result
        try:
            result["status"], cert = _get(args.address, args.port, domain, path, context, args.timeout)
            issued, expires = (
                datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(cert[key]), datetime.UTC)
                for key in ("notBefore", "notAfter")
            )
            result["certificate"] = {"valid": True, "not_before": issued.isoformat(), "not_after": expires.isoformat()}
        except ssl.SSLCertVerificationError as error:
            result["certificate"] = {"valid": False, "error": error.verify_message or str(error)}
            insecure = ssl.create_default_context()
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE
            result["status"], _ = _get(args.address, args.port, domain, path, insecure, args.timeout)
    except (OSError, ValueError) as error:
        result["status"] = None
        result["error"] = str(error) or type(error).__name__
    return result


def dns_answer(domain: str, args: argparse.Namespace) -> dict[str, Any]:
    command = ["dig", "+short", "+time=2", "+tries=1", f"@{args.dns_server}", "-p", str(args.dns_port), domain, "A"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"error": str(error)}
    if result.returncode != 0:
        return {"error": (result.stdout + result.stderr).strip()[-300:] or f"dig exited {result.returncode}"}
    return {"addresses": sorted(line for line in result.stdout.split() if line[:1].isdigit())}


def probe(args: argparse.Namespace) -> dict[str, Any]:
    context = _context(args.ca) if args.scheme == "https" else None
    targets = [target.split(",", 1) for target in args.target]
    return {
        "time": time.time(),
        "probes": [probe_one(domain, path, args, context) for domain, path in targets],
        "dns": {domain: dns_answer(domain, args) for domain in args.dns},
    }


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _line(name: str, value: object, **labels: object) -> str:
    inner = ",".join(f'{key}="{_label(val)}"' for key, val in sorted(labels.items()))
    return f"{name}{{{inner}}} {value}" if inner else f"{name} {value}"


def _epoch(text: object) -> float | None:
    if not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)).timestamp()


def _tool_json(command: list[str]) -> Any:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        return json.loads(result.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def app_metrics(args: argparse.Namespace) -> list[str]:
    """Each active slot: its container running, its health path answering through Caddy with its
    domain, and the domain's certificate."""
    lines = []
    projects = (_json_file(os.path.join(args.registry, "ssot.json")) or {}).get("projects") or {}
    table = (_json_file(os.path.join(args.registry, "slots.json")) or {}).get("slots") or {}
    running = {
        c["name"]: c.get("state") == "running" for c in (containers() if args.registry else []) if isinstance(c, dict)
    }
    context = _context(args.ca) if args.scheme == "https" else None
    for project, envs in sorted(projects.items()):
        for env, entry in sorted(envs.items()):
            pair = (table.get(project) or {}).get(env) or {}
            active = next((slot for slot in ("blue", "green") if (pair.get(slot) or {}).get("state") == "active"), None)
            if active is None:
                continue
            labels = {"project": project, "env": env, "slot": active, "domain": entry["domain"]}
            lines.append(
                _line("codeb_slot_container_running", int(running.get(f"{project}-{env}-{active}", False)), **labels)
            )
            found = probe_one(entry["domain"], entry["health_path"], args, context)
            status = found.get("status")
            lines.append(_line("codeb_slot_up", int(isinstance(status, int) and 200 <= status < 300), **labels))
            certificate = found.get("certificate")
            if certificate is not None:
                lines.append(
                    _line("codeb_certificate_valid", int(bool(certificate.get("valid"))), domain=entry["domain"])
                )
                for name, key in (("issued", "not_before"), ("expiry", "not_after")):
                    at = _epoch(certificate.get(key))
                    if at is not None:
                        lines.append(
                            _line(f"codeb_certificate_{name}_timestamp_seconds", int(at), domain=entry["domain"])
                        )
    return lines


def storage_metrics(args: argparse.Namespace) -> list[str]:
    status = _tool_json([args.storage_tool, "status"])
    if status is None:
        return [_line("codeb_storage_status_up", 0)]
    archiver = status.get("archiver") or {}
    ok, failed = _epoch(archiver.get("last_archived_time")), _epoch(archiver.get("last_failed_time"))
    ready = status.get("ready") or {}
    return [
        _line("codeb_storage_status_up", 1),
        _line("codeb_wal_archive_failing", int(failed is not None and (ok is None or failed > ok))),
        _line("codeb_wal_ready_segments", int(ready.get("count") or 0)),
        _line("codeb_wal_ready_oldest_seconds", float(ready.get("oldest_age_seconds") or 0)),
    ]


def backup_metrics(args: argparse.Namespace) -> list[str]:
    store = _tool_json(
        ["runuser", "-u", args.backup_user, "--", args.backup_tool, "--root", args.backup_root, "status"]
    )
    if store is None:
        return [_line("codeb_backup_status_up", 0)]
    lines = [_line("codeb_backup_status_up", 1)]
    newest = {
        "base": (store.get("base") or {}).get("finished_at"),
        "rdb": (store.get("rdb") or {}).get("finished_at"),
        "wal": (store.get("wal") or {}).get("newest_at"),
    }
    for kind, at in sorted(newest.items()):
        if (seconds := _epoch(at)) is not None:
            lines.append(_line("codeb_backup_last_timestamp_seconds", int(seconds), kind=kind))
    for database, dump in sorted((store.get("dumps") or {}).items()):
        if (seconds := _epoch((dump or {}).get("finished_at"))) is not None:
            lines.append(
                _line(
                    "codeb_backup_last_timestamp_seconds",
                    int(seconds),
                    kind="dump",
                    database=database,
                )
            )
    drill = store.get("drill")
    if isinstance(drill, dict) and (seconds := _epoch(drill.get("finished_at"))) is not None:
        lines.append(_line("codeb_backup_last_timestamp_seconds", int(seconds), kind="drill"))
        lines.append(_line("codeb_drill_ok", int(bool(drill.get("ok")))))
    return lines


def metrics(args: argparse.Namespace) -> dict[str, Any]:
    """Write codeb's checks as a node-exporter textfile (atomically: the collector never reads half)."""
    lines = []
    if args.registry:
        lines += app_metrics(args)
    if args.storage_tool:
        lines += storage_metrics(args)
    if args.backup_tool:
        lines += backup_metrics(args)
    lines.append(_line("codeb_metrics_updated_timestamp_seconds", int(time.time())))
    tmp = f"{args.out}.tmp"
    with open(tmp, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, args.out)
    return {"written": args.out, "lines": len(lines)}


def _probe_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheme", choices=("https", "http"), default="https")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--ca", action="append", default=[], help="a root to trust besides the system's")
    p.add_argument("--timeout", type=float, default=5.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeb-health")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("read")
    p.add_argument("--unit", action="append", default=[])
    p.add_argument("--disk", action="append", default=[])
    p.add_argument("--registry", default="")
    p.add_argument("--sites", default="")
    p.add_argument("--upstreams", default="")
    p.add_argument("--locks", default="")
    p.add_argument("--quadlet", default="/etc/containers/systemd")
    p.add_argument("--wireguard", default="", help="the mesh interface whose handshakes to report")
    p = sub.add_parser("probe")
    p.add_argument("--target", action="append", default=[], help="DOMAIN,PATH")
    p.add_argument("--dns", action="append", default=[], help="a domain to resolve")
    _probe_options(p)
    p.add_argument("--dns-server", default="127.0.0.1")
    p.add_argument("--dns-port", type=int, default=53)
    p = sub.add_parser("reach")
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("--timeout", type=float, default=3.0)
    p = sub.add_parser("metrics")
    p.add_argument("--out", required=True, help="the textfile collector's .prom file")
    p.add_argument("--registry", default="", help="the app server's registry: slot and certificate metrics")
    p.add_argument("--storage-tool", default="", help="codeb-storage: WAL archiving metrics")
    p.add_argument("--backup-tool", default="", help="codeb-backup: backup and drill age metrics")
    p.add_argument("--backup-root", default="/srv/backup")
    p.add_argument("--backup-user", default="codeb-backup")
    _probe_options(p)
    args = parser.parse_args(argv)
    json.dump(
        {"read": read, "probe": probe, "reach": reach, "metrics": metrics}[args.command](args),
        sys.stdout,
        sort_keys=True,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
