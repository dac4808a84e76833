"""The app server's versioned env store: the codeb-env tool and one version written through it.

Values travel only as uploaded 0600 files (SFTP); command lines carry names and paths."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File
from pyinfra.operations import files

from codeb_infra.commands import env as commands
from codeb_infra.domain.env import EnvStore, EnvVersion, entry_json
from codeb_infra.facts.env import EnvStoreIndex
from codeb_infra.operations import Commands

TOOL_SOURCE = Path(__file__).resolve().parent.parent / "remote" / "codeb_env.py"


@operation()
def env_tool(*, path: str) -> Commands:
    """
    Install codeb-env, the server-side writer of env versions.

    **Example:**

    .. code:: python

        env.env_tool(path="/opt/codeb/bin/codeb-env")
    """
    yield from files.put._inner(src=str(TOOL_SOURCE), dest=path, mode="755", create_remote_dir=True)


@operation()
def env_version(*, store: EnvStore, content: str, entry: EnvVersion | None) -> Commands:
    """
    Record ``content`` as version ``entry`` of a project/env and make it the live env file; with
    ``entry=None`` (the content equals the current version) only versions that never reached the
    backup server are copied there again.

    + store: where the project/env's env lives
    + content: the rendered env file
    + entry: its index entry (number, time, actor, names), from ``domain.env.next_version``

    **Example:**

    .. code:: python

        env.env_version(store=EnvStore("/opt/codeb", "shop", "production"), content="A=1\\n", entry=entry)
    """
    index = host.get_fact(EnvStoreIndex, path=store.index)
    if entry is None:
        if index.unshipped:
            yield commands.ship(store.tool, project=store.project, env=store.env)
            return
        current = index.current
        host.noop(
            f"{store.project}/{store.env}: env version {current.version if current else 0} already holds these values"
        )
        return
    for directory in (store.root, store.staged_dir):
        yield from files.directory._inner(path=directory, user="root", group="root", mode="700")
    staged_content, staged_entry = store.staged("env"), store.staged("json")
    yield from files.put._inner(src=StringIO(content), dest=staged_content, user="root", group="root", mode="600")
    yield from files.put._inner(
        src=StringIO(entry_json(entry)), dest=staged_entry, user="root", group="root", mode="600"
    )
    yield commands.commit(store.tool, project=store.project, env=store.env, content=staged_content, entry=staged_entry)


@operation()
def env_store_fetched(*, store: EnvStore) -> Commands:
    """
    Bring a project/env's env store back from the backup server when this server lacks its index
    or any version file the index names.

    **Example:**

    .. code:: python

        env.env_store_fetched(store=EnvStore("/opt/codeb", "shop", "production"))
    """
    index = host.get_fact(EnvStoreIndex, path=store.index)
    present = index.versions and all(host.get_fact(File, path=store.version_file(v.version)) for v in index.versions)
    if present:
        host.noop(f"{store.project}/{store.env}: every env version is on this server")
        return
    yield commands.fetch(store.tool, project=store.project, env=store.env)
