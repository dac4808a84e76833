"""The app server's release log: the codeb-releases tool, a release recorded, old images pruned."""

from __future__ import annotations

import posixpath
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import files

from codeb_infra.commands import releases as commands
from codeb_infra.domain.names import is_local_image
from codeb_infra.operations import Commands

TOOL_SOURCE = Path(__file__).resolve().parent.parent / "remote" / "codeb_releases.py"


@operation()
def releases_tool(*, path: str) -> Commands:
    """
    Install codeb-releases, the server-side writer of the release log.

    **Example:**

    .. code:: python

        releases.releases_tool(path="/opt/codeb/bin/codeb-releases")
    """
    yield from files.put._inner(src=str(TOOL_SOURCE), dest=path, mode="755", create_remote_dir=True)


@operation(is_idempotent=False)
def release_recorded(*, tool: str, staging: str, meta: str) -> Commands:
    """
    Add a release to its project/env's log (each call is one deploy, so one new release).

    + tool: path of codeb-releases
    + staging: where the metadata is uploaded (removed once recorded)
    + meta: ``domain.releases.record_meta``'s JSON

    **Example:**

    .. code:: python

        releases.release_recorded(tool=tool, staging="/opt/codeb/releases/.staged.json", meta=meta)
    """
    yield from files.directory._inner(path=posixpath.dirname(staging), user="root", group="root", mode="700")
    yield from files.put._inner(src=StringIO(meta), dest=staging, user="root", group="root", mode="600")
    yield commands.record(tool, meta=staging)


@operation()
def images_pruned(*, tool: str, project: str, env: str, numbers: list[int]) -> Commands:
    """
    Drop the image tags of these releases (and their images, when nothing else uses them).

    **Example:**

    .. code:: python

        releases.images_pruned(tool=tool, project="shop", env="production", numbers=[1, 2])
    """
    if not numbers:
        host.noop(f"{project}/{env}: no release image to prune")
        return
    yield commands.prune(tool, project=project, env=env, numbers=numbers)


@operation()
def contract_state(*, tool: str, project: str, env: str, number: int, state: str) -> Commands:
    """
    Record what became of a release's contract step (done, cancelled, failed).

    **Example:**

    .. code:: python

        releases.contract_state(tool=tool, project="shop", env="production", number=3, state="cancelled")
    """
    yield commands.contract(tool, project=project, env=env, number=number, state=state)


@operation(is_idempotent=False)
def release_step(*, image: str, env_files: list[str], network: str, step: str) -> Commands:
    """
    Run a release's migrate (or contract) step once in a throwaway container of ``image``; a
    non-zero exit fails the operation (and so the deploy, before any slot changes).

    **Example:**

    .. code:: python

        releases.release_step(image="localhost/app:v2", env_files=["/opt/codeb/env/app/production.env"],
            network="codeb-main", step="./migrate up")
    """
    yield commands.step_run(
        image=image,
        env_files=env_files,
        network=network,
        step=step,
        pull="never" if is_local_image(image) else "missing",
    )
