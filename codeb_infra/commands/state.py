"""codeb-state (the server-side registry/lock/health tool) command lines."""

from __future__ import annotations

import base64
import json
from typing import Any

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted


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
