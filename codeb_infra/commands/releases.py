"""codeb-releases (the app server's release log) command lines."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted


def record(tool: str, *, meta: str) -> StringCommand:
    return command("python3", quoted(tool), "record", "--meta", quoted(meta))


def prune(tool: str, *, project: str, env: str, numbers: list[int]) -> StringCommand:
    return command("python3", quoted(tool), "prune", "--project", quoted(project), "--env", quoted(env),
                   *(part for n in numbers for part in ("--number", str(int(n)))))


def contract(tool: str, *, project: str, env: str, number: int, state: str) -> StringCommand:
    return command("python3", quoted(tool), "contract", "--project", quoted(project), "--env", quoted(env),
                   "--number", str(int(number)), "--state", quoted(state))
