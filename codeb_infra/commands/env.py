"""codeb-env (the app server's versioned env store) command lines: names and paths only, never a value."""

from __future__ import annotations

import posixpath

from pyinfra.api import StringCommand

from codeb_infra.commands import Part, command, quoted


def tool_root(tool: str) -> str:
    """The codeb directory a tool installed as CODEB_DIR/bin/NAME works in (its --root)."""
    return posixpath.dirname(posixpath.dirname(tool))


def _tool(tool: str, action: str, project: str, env: str, *args: Part) -> StringCommand:
    return command(
        "python3",
        quoted(tool),
        "--root",
        quoted(tool_root(tool)),
        action,
        "--project",
        quoted(project),
        "--env",
        quoted(env),
        *args,
    )


def commit(tool: str, *, project: str, env: str, content: str, entry: str) -> StringCommand:
    """Store the uploaded version, make it live and copy it to the backup server."""
    return _tool(tool, "commit", project, env, "--content", quoted(content), "--entry", quoted(entry))


def ship(tool: str, *, project: str, env: str) -> StringCommand:
    return _tool(tool, "ship", project, env)


def fetch(tool: str, *, project: str, env: str) -> StringCommand:
    return _tool(tool, "fetch", project, env)
