#!/usr/bin/env python3
"""codeb-watch: the app server's watch of a release just promoted, run as a transient systemd unit
(`codeb-watch-{project}-{env}`) that outlives the controller's connection.

Every interval it asks the domain's health path through the local Caddy (`codeb-health probe`:
the domain as SNI and Host, as a visitor would) and counts the answers Caddy logged for the domain
(its access log, one JSON line per request). When the health path fails `max_failures` checks in a
row, or the share of 5xx answers in the last `window` seconds is above `max_5xx` percent, it rolls
back with `codeb-state switch`, the very switch `codeb rollback` runs, with the rollback planned by
the promote (a compare-and-swap: if anything switched meanwhile, nothing is written), records why
in the registry (`{registry}/watch/{project}.{env}.json`, which `codeb status` shows), appends a row
to the API's audit log (its hash chain) and sets `codeb_watch_rolled_back` for node-exporter's
textfile collector (the `ReleaseRolledBack` alert). A rollback or promote since (slots.json no
longer holds what the promote wrote) ends it at the next check; SIGTERM (the next promote's watch,
a remove) ends it at once.
Standard library only.
"""

import argparse
import base64
import collections
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

EXIT_CONFLICT = 3  # codeb-state switch: slots.json changed since the promote planned the rollback


def verdict(
    failures_in_a_row: int,
    last_health: str,
    requests: int,
    errors: int,
    *,
    max_failures: int,
    max_5xx: float,
    min_requests: int,
) -> str | None:
    """Why the release failed its watch, or None while it holds. The 5xx share counts only once
    the window holds ``min_requests`` answers, so one early 500 is not a verdict."""
    if failures_in_a_row >= max_failures:
        return f"health path failed {failures_in_a_row} checks in a row (last: {last_health})"
    if requests >= max(1, min_requests) and 100.0 * errors / requests > max_5xx:
        return f"{100.0 * errors / requests:.1f}% of {requests} answers were 5xx (over {max_5xx:g}%)"
    return None


def count_answers(lines: list[str], domains: set[str]) -> tuple[int, int]:
    """(answers, of which 5xx) among Caddy access-log lines for these domains."""
    total = errors = 0
    for line in lines:
        try:
            entry = json.loads(line)
            host = str(entry["request"]["host"]).split(":", 1)[0].lower()
            status = int(entry["status"])
        except (ValueError, KeyError, TypeError):
            continue
        if host in domains:
            total += 1
            errors += int(500 <= status <= 599)
    return total, errors


class AccessLog:
    """New lines of Caddy's access log since the watch began (a rolled file starts over)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = self._size()
        self.partial = b""

    def _size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def read(self) -> list[str]:
        size = self._size()
        if size < self.offset:
            self.offset, self.partial = 0, b""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        self.offset += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete if line.strip()]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def _write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _metric(spec: dict[str, Any], rolled_back: int, watching: int) -> None:
    """codeb_watch_* for node-exporter's textfile collector (only where monitoring is installed)."""
    path = spec.get("textfile") or ""
    if not path or not os.path.isdir(os.path.dirname(path)):
        return
    labels = f'project="{spec["project"]}",env="{spec["env"]}",domain="{spec["domain"]}"'
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        handle.write(f"codeb_watch_rolled_back{{{labels}}} {rolled_back}\ncodeb_watch_active{{{labels}}} {watching}\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class Watch:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.record: dict[str, Any] = {
            "state": "watching",
            "slot": spec["slot"],
            "release": spec.get("release"),
            "rollback_to": spec["rollback"]["to"],
            "since": _now(),
            "until": (datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=float(spec["minutes"])))
            .replace(microsecond=0)
            .isoformat(),
            "reason": None,
        }

    def save(self, **changes: Any) -> None:
        self.record.update(changes)
        _write_json(self.spec["record_path"], self.record)

    def switched(self) -> bool:
        """Whether slots.json no longer holds the record the promote wrote (a rollback or another
        promote ran since): then the watch is over."""
        try:
            with open(os.path.join(self.spec["registry"], "slots.json")) as handle:
                table = json.load(handle)
        except (OSError, ValueError):
            return False
        current = (table.get("slots") or {}).get(self.spec["project"], {}).get(self.spec["env"])
        return bool(current != self.spec["promoted"])

    def probe(self) -> tuple[bool, str]:
        spec = self.spec
        command = [
            "python3",
            spec["health_tool"],
            "probe",
            "--target",
            f"{spec['domain']},{spec['health_path']}",
            "--scheme",
            spec["scheme"],
            "--port",
            str(spec["port"]),
            "--timeout",
            str(max(1.0, min(5.0, float(spec["interval"])))),
            *(part for ca in spec.get("ca", []) for part in ("--ca", ca)),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
            found = json.loads(done.stdout)["probes"][0]
        except (OSError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired) as error:
            return False, f"codeb-health probe failed: {error}"
        status = found.get("status")
        if isinstance(status, int) and 200 <= status < 300:
            return True, f"HTTP {status}"
        return False, f"HTTP {status}" if status else str(found.get("error") or "no answer")

    def rollback(self, reason: str) -> int:
        # A promote or rollback by hand that lands now finds the switch's lock or a changed record.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        spec, plan = self.spec, self.spec["rollback"]
        command = [
            "python3",
            spec["state_tool"],
            "switch",
            "--registry",
            spec["registry"],
            "--locks",
            spec["locks"],
            "--project",
            spec["project"],
            "--env",
            spec["env"],
            "--holder",
            f"codeb-watch of {spec['project']}/{spec['env']}",
            "--wait",
            "30",
            "--expect",
            plan["expect"],
            "--record",
            base64.b64encode(json.dumps(plan["record"], sort_keys=True).encode()).decode(),
            *(part for path, address in plan["pointers"] for part in ("--pointer", f"{path}={address}")),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        if done.returncode == EXIT_CONFLICT:
            self.save(state="ended", reason=f"not rolled back ({reason}): the slots changed since the promote")
            return 0
        ok = done.returncode == 0
        self.save(
            state="rolled_back" if ok else "rollback_failed",
            reason=reason,
            at=_now(),
            error=None if ok else (done.stderr.strip()[-300:] or f"codeb-state exited {done.returncode}"),
        )
        self.audit(reason, ok)
        _metric(spec, rolled_back=1, watching=0)
        return 0 if ok else 1

    def audit(self, reason: str, ok: bool) -> None:
        python = self.spec.get("audit_python") or ""
        if not os.path.exists(python):
            return
        entry = {
            "actor": "codeb-watch on the app server",
            "tool": "rollback",
            "project": self.spec["project"],
            "env": self.spec["env"],
            "source": "watch",
            "outcome": "allowed" if ok else "failed",
            "params": {
                "automatic": True,
                "reason": reason,
                "from": self.spec["slot"],
                "to": self.spec["rollback"]["to"],
            },
            "error": None if ok else self.record.get("error"),
        }
        encoded = base64.b64encode(json.dumps(entry, sort_keys=True).encode()).decode()
        subprocess.run([python, "-m", "codeb_infra.api.admin", "audit-append", encoded], check=False)

    def run(self) -> int:
        spec = self.spec
        interval, window = float(spec["interval"]), float(spec["window"])
        deadline = time.monotonic() + 60 * float(spec["minutes"])
        log = AccessLog(spec["access_log"])
        domains = {d.lower() for d in spec["domains"]}
        counts: collections.deque[tuple[float, int, int]] = collections.deque()
        failing, last = 0, "not asked yet"
        self.save()
        _metric(spec, rolled_back=0, watching=1)
        while time.monotonic() < deadline:
            if self.switched():
                self.save(
                    state="ended", reason="the slots changed since the promote (a rollback or promote)", at=_now()
                )
                _metric(spec, rolled_back=0, watching=0)
                return 0
            healthy, last = self.probe()
            failing = 0 if healthy else failing + 1
            now = time.monotonic()
            counts.append((now, *count_answers(log.read(), domains)))
            while counts and counts[0][0] < now - window:
                counts.popleft()
            reason = verdict(
                failing,
                last,
                sum(c[1] for c in counts),
                sum(c[2] for c in counts),
                max_failures=int(spec["max_failures"]),
                max_5xx=float(spec["max_5xx"]),
                min_requests=int(spec["min_requests"]),
            )
            if reason is not None:
                print(
                    f"{spec['project']}/{spec['env']}: {reason}; rolling back to {spec['rollback']['to']}", flush=True
                )
                return self.rollback(reason)
            time.sleep(max(0.0, interval - (time.monotonic() - now)))
        self.save(state="passed", reason=None, at=_now())
        _metric(spec, rolled_back=0, watching=0)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeb-watch")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--spec", required=True, help="the watch as the promote wrote it (JSON)")
    args = parser.parse_args(argv)
    with open(args.spec) as handle:
        watch = Watch(json.load(handle))

    def stopped(signum: int, frame: Any) -> None:
        watch.save(state="stopped", reason="ended by the next promote or a remove", at=_now())
        _metric(watch.spec, rolled_back=0, watching=0)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stopped)
    return watch.run()


if __name__ == "__main__":
    sys.exit(main())
