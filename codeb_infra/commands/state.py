"""codeb-state (the server-side registry/lock/health tool) command lines."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted
from codeb_infra.commands.env import tool_root


def _tool(tool: str, *args: Any) -> StringCommand:
    return command("python3", quoted(tool), *args)


def put_record(
    tool: str, *, kind: str, registry: str, project: str, env: str, expect: str, record: dict[str, Any] | None
) -> StringCommand:
    what = (
        ["--remove"]
        if record is None
        else [
            "--record",
            quoted(base64.b64encode(json.dumps(record, sort_keys=True).encode()).decode()),
        ]
    )
    return _tool(
        tool,
        f"put-{kind}",
        "--registry",
        quoted(registry),
        "--project",
        quoted(project),
        "--env",
        quoted(env),
        "--expect",
        quoted(expect),
        *what,
    )


def lock(tool: str, *, locks: str, project: str, env: str, holder: str, wait: float, break_lock: bool) -> StringCommand:
    extra = ["--break-lock"] if break_lock else []
    return _tool(
        tool,
        "lock",
        "--dir",
        quoted(locks),
        "--project",
        quoted(project),
        "--env",
        quoted(env),
        "--holder",
        quoted(holder),
        "--wait",
        f"{wait:g}",
        *extra,
    )


def unlock(tool: str, *, locks: str, project: str, env: str, holder: str) -> StringCommand:
    return _tool(
        tool,
        "unlock",
        "--dir",
        quoted(locks),
        "--project",
        quoted(project),
        "--env",
        quoted(env),
        "--holder",
        quoted(holder),
    )


def health(tool: str, *, url: str, interval: float, timeout: float, container: str) -> StringCommand:
    return _tool(
        tool,
        "health",
        "--url",
        quoted(url),
        "--interval",
        f"{interval:g}",
        "--timeout",
        f"{timeout:g}",
        "--container",
        quoted(container),
    )


def fail(message: str) -> StringCommand:
    return command("echo", quoted(message), ">&2", ";", "exit", "1")


def snapshot(
    tool: str, *, registry: str, project: str, env: str, pointers: list[str], releases: str = ""
) -> StringCommand:
    """One read of what a switch needs (with ``releases``, that release log too); prints a marker
    instead when the tool is missing or older than `snapshot` (the caller then reads the slow way
    and installs the tool)."""
    extra = [part for path in pointers for part in ("--pointer", quoted(path))]
    if releases:
        extra += ["--releases", quoted(releases)]
    return command(
        "python3",
        quoted(tool),
        "snapshot",
        "--registry",
        quoted(registry),
        "--project",
        quoted(project),
        "--env",
        quoted(env),
        *extra,
        "2>/dev/null",
        "||",
        "echo",
        SNAPSHOT_UNAVAILABLE,
    )


SNAPSHOT_UNAVAILABLE = "__codeb_no_snapshot__"


@dataclass(frozen=True)
class SwitchAudit:
    """The audit row a switch appends once it switched to the log at ``database``; skipped where
    the API venv's ``python`` is missing (no API installed yet)."""

    python: str
    database: str
    entry: dict[str, Any]


@dataclass(frozen=True)
class SwitchCancel:
    """The releases whose contract steps a switch records cancelled, by codeb-releases ``tool``
    (which works in the codeb directory it is installed under)."""

    tool: str
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class SwitchWatch:
    """The watch a promote starts once switched: ``spec`` (what `codeb-watch run` reads, no secret)
    written to ``spec_path``, run by ``tool`` as the transient systemd ``unit``."""

    tool: str
    unit: str
    spec_path: str
    spec: dict[str, Any]


def switch(
    tool: str,
    *,
    registry: str,
    locks: str,
    project: str,
    env: str,
    holder: str,
    wait: float,
    break_lock: bool,
    expect: str,
    record: dict[str, Any],
    pointers: list[tuple[str, str]],
    audit: SwitchAudit | None = None,
    cancel: SwitchCancel | None = None,
    watch: SwitchWatch | None = None,
) -> StringCommand:
    """Check, lock, move the pointers (in the order given), record, then (only once switched)
    append ``audit``'s row, cancel ``cancel``'s contract steps and start ``watch``, and unlock: one
    command."""
    extra: list[Any] = ["--break-lock"] if break_lock else []
    if audit is not None:
        extra += ["--audit", quoted(_encoded(audit.entry)), "--audit-db", quoted(audit.database)]
        extra += ["--api-python", quoted(audit.python)]
    if cancel is not None and cancel.numbers:
        extra += ["--releases-tool", quoted(cancel.tool), "--releases-root", quoted(tool_root(cancel.tool))]
        extra += [part for number in cancel.numbers for part in ("--cancel-contract", str(number))]
    if watch is not None:
        extra += ["--watch-tool", quoted(watch.tool), "--watch-unit", quoted(watch.unit)]
        extra += ["--watch-spec-path", quoted(watch.spec_path), "--watch-spec", quoted(_encoded(watch.spec))]
    moves = [part for path, address in pointers for part in ("--pointer", quoted(f"{path}={address}"))]
    return _tool(
        tool,
        "switch",
        "--registry",
        quoted(registry),
        *_locked(locks=locks, project=project, env=env, holder=holder, wait=wait),
        *extra,
        "--expect",
        quoted(expect),
        "--record",
        quoted(_encoded(record)),
        *moves,
    )


def write(tool: str, *, path: str, content: str, mode: str, dir_mode: str = "755") -> StringCommand:
    """Write ``content`` (no secret: it is on the command line) to ``path`` atomically, a
    missing directory made with ``dir_mode``; unchanged content is left alone."""
    encoded = base64.b64encode(content.encode()).decode()
    return _tool(
        tool,
        "write",
        "--path",
        quoted(path),
        "--mode",
        quoted(mode),
        "--dir-mode",
        quoted(dir_mode),
        "--content",
        quoted(encoded),
    )


@dataclass(frozen=True)
class StepsPlan:
    """What `codeb-state steps` runs under a project's lock, once the registry's records of the
    project/env still have the digests in ``expect``: ``steps`` in order while each succeeds; once
    step N fails, each ``on_failure`` command whose range holds N; then ``failure`` as the run's
    last line. Commands are built by the command builders; none holds a secret."""

    steps: tuple[StringCommand, ...]
    on_failure: tuple[tuple[range, StringCommand], ...]
    failure: str
    registry: str = ""
    expect: tuple[tuple[str, str, str], ...] = ()  # (file, table, digest of project/env's record)


def steps(
    tool: str,
    *,
    locks: str,
    project: str,
    env: str,
    holder: str,
    wait: float,
    break_lock: bool,
    plan: StepsPlan,
    audit: SwitchAudit | None = None,
) -> StringCommand:
    """Lock, run ``plan``, append ``audit``'s row with the outcome (allowed or failed), unlock: one command."""
    extra: list[Any] = ["--break-lock"] if break_lock else []
    if audit is not None:
        extra += ["--audit-allowed", quoted(_encoded({**audit.entry, "outcome": "allowed"}))]
        extra += ["--audit-failed", quoted(_encoded({**audit.entry, "outcome": "failed"}))]
        extra += ["--audit-db", quoted(audit.database), "--api-python", quoted(audit.python)]
    encoded = {
        "steps": [step.get_raw_value() for step in plan.steps],
        "on_failure": [
            {"from": when.start, "until": when.stop - 1, "command": step.get_raw_value()}
            for when, step in plan.on_failure
        ],
        "failure": plan.failure,
        "registry": plan.registry,
        "expect": [{"file": file, "table": table, "digest": digest} for file, table, digest in plan.expect],
    }
    return _tool(
        tool,
        "steps",
        *_locked(locks=locks, project=project, env=env, holder=holder, wait=wait),
        *extra,
        "--plan",
        quoted(_encoded(encoded)),
    )


def _locked(*, locks: str, project: str, env: str, holder: str, wait: float) -> list[Any]:
    """The options of a command that takes a project's deploy lock itself (`switch`, `steps`)."""
    return [
        "--locks",
        quoted(locks),
        "--project",
        quoted(project),
        "--env",
        quoted(env),
        "--holder",
        quoted(holder),
        "--wait",
        f"{wait:g}",
    ]


def _encoded(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data, sort_keys=True).encode()).decode()
