#!/usr/bin/env python3
"""codeb-state: the app server's side of registry writes, deploy locks, health checks, and the
switch (promote/rollback) as one step.

Runs on the server so that read-modify-write of the shared registry files happens under one
flock with a compare-and-swap on the record the caller planned from; standard library only.
`snapshot` prints what a switch needs in one read (with the release log, when named), `switch`
checks, locks, moves the pointers, records, and then, only when it switched, appends the change's
audit row (with the API's own audit log module, installed beside it), cancels the contract steps of releases rolled
back (through `codeb-releases contract`) and, for a promote, starts the watch of the new release
(`codeb-watch` as a transient systemd unit, replacing any earlier one), before it unlocks: one
command.
"""

import argparse
import base64
import contextlib
import datetime
import fcntl
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any

EXIT_CONFLICT = 3
EXIT_LOCKED = 4
# Starts the one line that says a lock is held, so the controller can tell it from other failures.
LOCK_HELD = "codeb-state: lock held: "
# Starts the line that says a new project's planned port went to another deploy meanwhile (nothing
# written): the controller then plans again from the registry as it is now.
PORT_TAKEN = "codeb-state: port taken: "
# Starts the line that says the registry records a plan was made from changed before its first
# step (another run finished while this one waited for the lock): nothing was done, plan again.
CHANGED_MEANWHILE = "codeb-state: changed meanwhile: "
# The API's audit log module (codeb_infra/api/audit.py, standard library only), installed beside this tool.
AUDIT_MODULE = "codeb_audit.py"
WATCH_MISSING = "codeb-watch is not installed on this server (codeb bootstrap installs it); the release is not watched"


def digest(record: Any) -> str:
    """Digest of a registry record; the caller and this tool must agree on it."""
    if record is None:
        return "none"
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _read(path: str, default: Any) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def _write_atomic(path: str, data: Any, mode: int = 0o644) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def put_record(args: argparse.Namespace, filename: str, table: str) -> int:
    """Replace registry[table][project][env] if it still is what the caller planned from."""
    os.makedirs(args.registry, exist_ok=True)
    path = os.path.join(args.registry, filename)
    new = None if args.remove else json.loads(base64.b64decode(args.record))
    with open(os.path.join(args.registry, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _read(path, {"version": 1, table: {}})
        current = data.get(table, {}).get(args.project, {}).get(args.env)
        if digest(current) == digest(new):
            print("unchanged")
            return 0
        if digest(current) != args.expect:
            sys.stderr.write(
                f"{args.project}/{args.env}: {filename} changed since this run read it "
                "(another deploy ran meanwhile); nothing written, run again\n"
            )
            return EXIT_CONFLICT
        shared = _ports_of_others(data, table, args.project, args.env) & set((new or {}).get("ports", {}).values())
        if shared:
            # Two new projects planned their ports from the same ssot.json at the same time.
            ports = ", ".join(map(str, sorted(shared)))
            sys.stderr.write(
                f"{PORT_TAKEN}{args.project}/{args.env}: port {ports} was taken meanwhile by another deploy; "
                "nothing written, run again\n"
            )
            return EXIT_CONFLICT
        envs = data.setdefault(table, {}).setdefault(args.project, {})
        if new is None:
            envs.pop(args.env, None)
            if not envs:
                data[table].pop(args.project)
        else:
            envs[args.env] = new
        _write_atomic(path, data)
    print("written")
    return 0


def _ports_of_others(data: dict[str, Any], table: str, project: str, env: str) -> set[int]:
    """The ports every other project/env holds in ssot.json (none for another table)."""
    if table != "projects":
        return set()
    return {
        port
        for name, envs in data.get("projects", {}).items()
        for env_name, entry in envs.items()
        if (name, env_name) != (project, env)
        for port in entry.get("ports", {}).values()
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def lock(args: argparse.Namespace) -> int:
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, f"{args.project}.{args.env}.lock")
    deadline = time.monotonic() + args.wait
    if args.break_lock and os.path.exists(path):
        sys.stderr.write(f"breaking lock held by {_holder(path)}\n")
        os.unlink(path)
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if time.monotonic() >= deadline:
                sys.stderr.write(
                    f"{LOCK_HELD}{args.project}/{args.env} is locked by {_holder(path)}; "
                    "wait for it (lock_wait=SECONDS) or, if that run died, break_lock=true\n"
                )
                return EXIT_LOCKED
            time.sleep(0.2)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump({"holder": args.holder, "since": _now()}, handle)
        return 0


def _holder(path: str) -> str:
    try:
        with open(path) as handle:
            held = json.load(handle)
        return f"{held.get('holder', '?')} since {held.get('since', '?')}"
    except (OSError, ValueError):
        return "an unknown run"


def unlock(args: argparse.Namespace) -> int:
    path = os.path.join(args.dir, f"{args.project}.{args.env}.lock")
    try:
        with open(path) as handle:
            held = json.load(handle)
    except FileNotFoundError:
        return 0
    except ValueError:
        held = {}
    if held.get("holder") != args.holder:
        sys.stderr.write(f"lock is held by {_holder(path)}, not by this run; left alone\n")
        return EXIT_LOCKED
    os.unlink(path)
    return 0


def _tool_digest() -> str:
    """Of this file and the audit log's module beside it, as the controller computes it."""
    found = hashlib.sha256()
    for path in (os.path.abspath(__file__), os.path.join(os.path.dirname(os.path.abspath(__file__)), AUDIT_MODULE)):
        try:
            with open(path, "rb") as handle:
                found.update(handle.read())
        except FileNotFoundError:
            pass
    return found.hexdigest()[:16]


def _pointer(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return None


def _containers(podman: str, project: str, env: str) -> Any:
    command = [
        podman,
        "ps",
        "--all",
        "--format",
        "json",
        "--filter",
        f"label=codeb.project={project}",
        "--filter",
        f"label=codeb.environment={env}",
    ]
    try:
        found = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return []
    if found.returncode != 0:
        raise SystemExit(f"podman ps failed: {found.stderr.strip()}")
    return json.loads(found.stdout or "[]")


def snapshot(args: argparse.Namespace) -> int:
    """One project/env's registry records, pointer files and containers, as one JSON object."""
    projects = _read(os.path.join(args.registry, "ssot.json"), {}).get("projects", {})
    table = _read(os.path.join(args.registry, "slots.json"), {}).get("slots", {})
    json.dump(
        {
            "tool": _tool_digest(),
            "project": projects.get(args.project, {}).get(args.env),
            "slots": table.get(args.project, {}).get(args.env),
            "pointers": {path: _pointer(path) for path in args.pointer},
            "containers": _containers(args.podman, args.project, args.env),
            **({"releases": _read(args.releases, None)} if args.releases else {}),
        },
        sys.stdout,
        sort_keys=True,
    )
    print()
    return 0


def _write_pointer(path: str, address: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        handle.write(f"{address}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _audit(args: argparse.Namespace) -> None:
    """The switch's audit row (base64 JSON, no secret in it), appended in this process by the API's
    own audit log (`codeb_audit.py`, installed beside this tool), so the log keeps one writer of
    its hash chain; skipped where the API is not installed yet. A row that cannot be written is
    reported and does not undo the switch."""
    if not os.path.exists(args.api_python):
        return
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import codeb_audit  # type: ignore[import-not-found]  # installed beside this tool

        codeb_audit.AuditLog(args.audit_db).append(**json.loads(base64.b64decode(args.audit)))
    except Exception as error:  # the switch is done: a row that failed is reported, not raised
        sys.stderr.write(f"codeb-state: the audit row was not written: {error}\n")


def _cancel_contracts(args: argparse.Namespace) -> int:
    """Record the contract steps of the releases this switch rolled back cancelled (they never run)."""
    failed = 0
    for number in args.cancel_contract:
        done = subprocess.run(
            [
                sys.executable,
                args.releases_tool,
                "--root",
                args.releases_root,
                "contract",
                "--project",
                args.project,
                "--env",
                args.env,
                "--number",
                str(number),
                "--state",
                "cancelled",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        failed = failed or done.returncode
    return 1 if failed else 0


def _start_watch(args: argparse.Namespace) -> int:
    """Write the watch's spec (no secret in it) and start `codeb-watch run` as the transient unit
    ``--watch-unit``, after stopping any watch of the same project/env (none is no error)."""
    service = f"{args.watch_unit}.service"
    for step in (["systemctl", "stop", service], ["systemctl", "reset-failed", service]):
        subprocess.run(step, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    os.makedirs(os.path.dirname(args.watch_spec_path), exist_ok=True)
    _write_atomic(args.watch_spec_path, json.loads(base64.b64decode(args.watch_spec)), mode=0o644)
    if not os.path.isfile(args.watch_tool):
        sys.stderr.write(f"{WATCH_MISSING}\n")
        return 0
    started = subprocess.run(
        [
            "systemd-run",
            "--quiet",
            "--collect",
            "--unit",
            args.watch_unit,
            "--description",
            "codeb watch of a promoted release",
            "python3",
            args.watch_tool,
            "run",
            "--spec",
            args.watch_spec_path,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        sys.stderr.write(f"codeb-state: switched, but the watch did not start: {started.stderr.strip()}\n")
        return 1
    print(f"watching as {args.watch_unit}")
    return 0


def switch(args: argparse.Namespace) -> int:
    """Under the project's lock: if slots.json still holds what the caller planned from, move the
    pointers (the domain's first), record the new slots, append the audit row, cancel the rolled
    back contract steps and start the new release's watch; the lock is released in any case."""
    pointers: list[tuple[str, str]] = []
    for item in args.pointer:
        path, sep, address = item.rpartition("=")
        if not sep or not path or not address:
            sys.stderr.write(f"--pointer {item!r}: expected PATH=ADDRESS\n")
            return 2
        pointers.append((path, address))
    args.dir = args.locks
    locked = lock(args)
    if locked != 0:
        return locked
    try:
        new = json.loads(base64.b64decode(args.record))
        path = os.path.join(args.registry, "slots.json")
        with open(os.path.join(args.registry, ".lock"), "w") as registry_lock:
            fcntl.flock(registry_lock, fcntl.LOCK_EX)
            data = _read(path, {"version": 1, "slots": {}})
            current = data.get("slots", {}).get(args.project, {}).get(args.env)
            # Strict: even a record equal to the new one fails when it is not what the caller read,
            # because then another run switched meanwhile and this one must not report success.
            if digest(current) != args.expect:
                sys.stderr.write(
                    f"{args.project}/{args.env}: slots.json changed since this run read it "
                    "(another deploy ran meanwhile); nothing written, run again\n"
                )
                return EXIT_CONFLICT
            for pointer_path, address in pointers:
                if _pointer(pointer_path) != address:
                    _write_pointer(pointer_path, address)
                    print(f"pointed {pointer_path} at {address}")
            if digest(current) != digest(new):
                data.setdefault("slots", {}).setdefault(args.project, {})[args.env] = new
                _write_atomic(path, data)
                print("recorded")
        if args.audit:
            _audit(args)
        cancelled = _cancel_contracts(args)
        watched = _start_watch(args) if args.watch_spec else 0
        return cancelled or watched
    finally:
        unlock(args)


def write(args: argparse.Namespace) -> int:
    """Write ``--content`` (base64) to ``--path`` atomically with ``--mode``; a file that already
    holds it with that mode is left alone. A missing directory is made with ``--dir-mode``."""
    content = base64.b64decode(args.content)
    mode = int(args.mode, 8)
    directory = os.path.dirname(args.path)
    os.makedirs(directory, mode=int(args.dir_mode, 8), exist_ok=True)
    try:
        with open(args.path, "rb") as handle:
            if handle.read() == content and (os.stat(args.path).st_mode & 0o7777) == mode:
                print(f"{args.path} is up to date")
                return 0
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, args.path)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"wrote {args.path}")
    return 0


class _Tolerant:
    """stdout/stderr of a `steps` run: once the controller that reads them is gone (killed
    mid-run, its SSH channel closed), writes are dropped and the steps go on to the end."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        with contextlib.suppress(OSError, ValueError):  # BrokenPipeError is an OSError
            self.stream.write(text)
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()

    def fileno(self) -> int:
        return int(self.stream.fileno())


def _tool_module(path: str) -> Any:
    """A standard-library tool of ours (this one, or one installed beside it) as a module."""
    if os.path.abspath(path) == os.path.abspath(__file__):
        return sys.modules[__name__]
    name = "codeb_tool_" + os.path.basename(path).replace("-", "_")
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _run_step(command: str) -> int:
    """One step: `python3 TOOL ARGS...` of a tool beside this one runs in this process (no new
    interpreter per step); any other command runs in /bin/sh, its output passed on."""
    argv = shlex.split(command)
    here = os.path.dirname(os.path.abspath(__file__))
    if len(argv) >= 2 and argv[0] == "python3" and os.path.dirname(os.path.abspath(argv[1])) == here:
        try:
            return int(_tool_module(argv[1]).main(argv[2:]) or 0)
        except SystemExit as error:
            return error.code if isinstance(error.code, int) else 1
        except Exception as error:  # as the tool on its own would fail, in one line, and the plan goes on
            sys.stderr.write(f"{os.path.basename(argv[1])} {argv[2] if len(argv) > 2 else ''}: {error}\n")
            return 1
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def _stale(registry: str, expected: list[dict[str, str]], project: str, env: str) -> str:
    """The first registry file whose record of project/env is not the one the plan expects ("" if none)."""
    for item in expected:
        data = _read(os.path.join(registry, item["file"]), {})
        if digest(data.get(item["table"], {}).get(project, {}).get(env)) != item["digest"]:
            return item["file"]
    return ""


def steps(args: argparse.Namespace) -> int:
    """Under the project's lock, once the registry records still are those the plan was made from
    (``expect``): the plan's steps in order while each succeeds; once step N fails, the failure
    steps whose ``from``..``until`` range holds N, then the failure line. The audit row of the
    outcome is appended and the lock released in any case: one command for a whole change."""
    plan = json.loads(base64.b64decode(args.plan))
    sys.stdout, sys.stderr = _Tolerant(sys.stdout), _Tolerant(sys.stderr)
    args.dir = args.locks
    locked = lock(args)
    if locked != 0:
        return locked
    failed_at = None
    try:
        stale = _stale(plan.get("registry", ""), plan.get("expect", []), args.project, args.env)
        if stale:
            sys.stderr.write(
                f"{CHANGED_MEANWHILE}{args.project}/{args.env}: {stale} changed since this run read it "
                "(another run finished while this one waited); nothing done\n"
            )
            return EXIT_CONFLICT
        for index, command in enumerate(plan["steps"]):
            if _run_step(command) != 0:
                failed_at = index
                break
        if failed_at is not None:
            for step in plan.get("on_failure", []):
                if step["from"] <= failed_at <= step["until"]:
                    _run_step(step["command"])
        args.audit = args.audit_allowed if failed_at is None else args.audit_failed
        if args.audit:
            _audit(args)
    finally:
        unlock(args)
    if failed_at is not None:
        sys.stderr.write(f"{plan['failure']}\n")
        return 1
    return 0


def health(args: argparse.Namespace) -> int:
    # Imported here: urllib.request costs ~30 ms at start, which every other command would pay.
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + args.timeout
    last, attempt = "no answer", 0
    while True:
        try:
            with urllib.request.urlopen(args.url, timeout=max(1.0, args.interval)) as response:
                if 200 <= response.status < 300:
                    print(f"healthy: {args.url} answered {response.status}")
                    return 0
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            last = str(getattr(error, "reason", error))
        # Soon after a start the app is often a few milliseconds from listening: poll again at
        # once, then back off to the interval, so a ready release is seen without a full wait.
        pause = min(args.interval, 0.05 * 2**attempt)
        attempt += 1
        if time.monotonic() + pause > deadline:
            break
        time.sleep(pause)
    sys.stderr.write(f"health check failed: {args.url} gave no 2xx within {args.timeout:g}s (last: {last})\n")
    if args.container:
        sys.stderr.write(f"last log lines of {args.container}:\n")
        sys.stderr.flush()
        subprocess.run([args.podman, "logs", "--tail", "30", args.container], stdout=sys.stderr, check=False)
    return 1


def _locked_options(p: argparse.ArgumentParser) -> None:
    """A command that takes the project's deploy lock itself and appends the change's audit row."""
    p.add_argument("--locks", required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--holder", required=True)
    p.add_argument("--wait", type=float, default=0.0)
    p.add_argument("--break-lock", action="store_true")
    p.add_argument("--audit-db", default="/var/lib/codeb/audit.db")
    p.add_argument("--api-python", default="/opt/codeb/api/venv/bin/python", help="missing: no API, no row")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeb-state")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("put-slots", "put-project"):
        p = sub.add_parser(name)
        p.add_argument("--registry", required=True)
        p.add_argument("--project", required=True)
        p.add_argument("--env", required=True)
        p.add_argument("--expect", required=True)
        what = p.add_mutually_exclusive_group(required=True)
        what.add_argument("--record", help="the new record, base64 JSON")
        what.add_argument("--remove", action="store_true", help="drop the record")
    p = sub.add_parser("snapshot")
    p.add_argument("--registry", required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--pointer", action="append", default=[], help="a pointer file to read (repeat)")
    p.add_argument("--podman", default="podman")
    p.add_argument("--releases", default="", help="the project/env's release log to include")
    p = sub.add_parser("switch")
    p.add_argument("--registry", required=True)
    _locked_options(p)
    p.add_argument("--expect", required=True)
    p.add_argument("--record", required=True, help="the new slots record, base64 JSON")
    p.add_argument("--pointer", action="append", default=[], help="PATH=ADDRESS, in the order to write (repeat)")
    p.add_argument("--audit", default="", help="the audit row to append once switched, base64 JSON")
    p.add_argument("--cancel-contract", type=int, action="append", default=[], help="a rolled-back release (repeat)")
    p.add_argument("--releases-tool", default="/opt/codeb/bin/codeb-releases")
    p.add_argument("--releases-root", default="/opt/codeb")
    p.add_argument("--watch-spec", default="", help="the watch to start once switched, base64 JSON")
    p.add_argument("--watch-spec-path", default="")
    p.add_argument("--watch-unit", default="")
    p.add_argument("--watch-tool", default="/opt/codeb/bin/codeb-watch")
    p = sub.add_parser("steps")
    _locked_options(p)
    p.add_argument("--plan", required=True, help="base64 JSON: steps, on_failure, failure")
    p.add_argument("--audit-allowed", default="", help="the audit row when every step ran, base64 JSON")
    p.add_argument("--audit-failed", default="", help="the audit row when a step failed, base64 JSON")
    p = sub.add_parser("write")
    p.add_argument("--path", required=True)
    p.add_argument("--content", required=True, help="base64")
    p.add_argument("--mode", default="644")
    p.add_argument("--dir-mode", default="755")
    for name in ("lock", "unlock"):
        p = sub.add_parser(name)
        p.add_argument("--dir", required=True)
        p.add_argument("--project", required=True)
        p.add_argument("--env", required=True)
        p.add_argument("--holder", required=True)
        if name == "lock":
            p.add_argument("--wait", type=float, default=0.0)
            p.add_argument("--break-lock", action="store_true")
    p = sub.add_parser("health")
    p.add_argument("--url", required=True)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--container", default="")
    p.add_argument("--podman", default="podman")
    args = parser.parse_args(argv)
    if args.command == "put-slots":
        return put_record(args, "slots.json", "slots")
    if args.command == "put-project":
        return put_record(args, "ssot.json", "projects")
    commands = {"lock": lock, "unlock": unlock, "health": health, "snapshot": snapshot, "switch": switch}
    return {**commands, "steps": steps, "write": write}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
