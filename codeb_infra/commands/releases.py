"""codeb-releases (the app server's release log) command lines."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted
from codeb_infra.commands.env import tool_root


def record(tool: str, *, meta: str) -> StringCommand:
    return command("python3", quoted(tool), "--root", quoted(tool_root(tool)), "record", "--meta", quoted(meta))


def prune(tool: str, *, project: str, env: str, numbers: list[int]) -> StringCommand:
    return command(
        "python3",
        quoted(tool),
        "--root",
        quoted(tool_root(tool)),
        "prune",
        "--project",
        quoted(project),
        "--env",
        quoted(env),
        *(part for n in numbers for part in ("--number", str(int(n)))),
    )


def contract(tool: str, *, project: str, env: str, number: int, state: str) -> StringCommand:
    return command(
        "python3",
        quoted(tool),
        "--root",
        quoted(tool_root(tool)),
        "contract",
        "--project",
        quoted(project),
        "--env",
        quoted(env),
        "--number",
        str(int(number)),
        "--state",
        quoted(state),
    )


def step_run(*, image: str, env_files: list[str], network: str, step: str, pull: str) -> StringCommand:
    """A release's migrate or contract step, once, in a throwaway container of its image with the
    slot's env files (the master env last, as a slot reads them)."""
    env_args = [part for path in env_files for part in ("--env-file", quoted(path))]
    return command(
        "podman",
        "run",
        "--rm",
        "--network",
        quoted(network),
        "--pull",
        quoted(pull),
        *env_args,
        "--entrypoint",
        "/bin/sh",
        quoted(image),
        "-c",
        quoted(step),
    )
