"""Env files of a project/env: change, restore and read them through the app server's versioned store.

What the CLI and the API call: ``change`` (a deploy: set, unset, import, restore a version) and
``fetch_from_backup`` run through ``runner.run_flow``; ``listing``, ``history``, ``value`` and
``version_diff`` read (``runner.read_facts``). Values are read over SFTP into this process and
written back as uploaded files; they are never printed, logged or put on a command line.
"""

from __future__ import annotations

import getpass
import socket
from io import BytesIO
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File

from codeb_infra.config.app import HostSettings
from codeb_infra.domain import env as domain
from codeb_infra.domain import names
from codeb_infra.domain.data import PROTECTED_VARIABLES
from codeb_infra.domain.env import EnvIndex, EnvStore, Values
from codeb_infra.domain.errors import CodebError, RunFailed
from codeb_infra.domain.names import Environment
from codeb_infra.facts.env import EnvStoreIndex
from codeb_infra.flows.common import utcnow
from codeb_infra.operations import env as env_ops


class EnvChange(BaseModel):
    """One change to a project/env's env: values to set, names to unset, or a version to restore."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    env: Environment = Environment.PRODUCTION
    set_values: dict[str, str] = Field(default_factory=dict, repr=False)  # values: never in a repr or a log
    unset: tuple[str, ...] = ()
    restore: int | None = None

    @classmethod
    def of(
        cls,
        project: str,
        env: str = "production",
        *,
        set_values: dict[str, str] | None = None,
        unset: tuple[str, ...] = (),
        restore: int | None = None,
    ) -> EnvChange:
        """Validated before any server is asked: names, values, and what was asked at all."""
        values = {domain.variable_name(k): domain.variable_value(k, v) for k, v in (set_values or {}).items()}
        gone = tuple(domain.variable_name(n) for n in unset)
        if restore is None and not values and not gone:
            raise CodebError("nothing to change: give NAME=VALUE pairs, names to unset or a version to restore")
        return cls(
            project=names.project_name(project),
            env=names.environment(env),
            set_values=values,
            unset=gone,
            restore=restore,
        )


def store_of(project: str, env: Environment) -> EnvStore:
    return EnvStore(HostSettings.from_data(host.data).codeb_dir, project, env.value)


def actor() -> str:
    """Who changes something: the API key the change came through (host data `codeb_actor`), else
    the SSH user and the controller's host name."""
    return host.data.get("codeb_actor") or f"{host.data.get('ssh_user') or getpass.getuser()}@{socket.gethostname()}"


def read_text(path: str) -> str | None:
    """A root-only file's text, read over SFTP into this process only (None when absent)."""
    if not host.get_fact(File, path=path):
        return None
    buffer = BytesIO()
    try:
        done = host.get_file(path, buffer)
    except OSError:
        done = False
    if not done:
        raise RunFailed(f"could not read {path} on {host.name}")
    return buffer.getvalue().decode()


def stored_values(store: EnvStore, index: EnvIndex, number: int | None = None) -> Values:
    """The values of version ``number`` (default: the current one; before any version, the live file)."""
    if number is None and index.current is None:
        return domain.parse_stored(read_text(store.live) or "")
    version = index.get(number) if number is not None else index.current
    assert version is not None
    text = read_text(store.version_file(version.version))
    if text is None:
        raise RunFailed(
            f"{store.project}/{store.env}: env version {version.version} is missing on {host.name}; "
            "bring the store back with `codeb env restore --from-backup`"
        )
    values = domain.parse_stored(text)
    if domain.digest(values) != version.digest:
        raise RunFailed(f"{store.project}/{store.env}: env version {version.version} does not match its digest")
    return values


@deploy("codeb env")
def change(request: EnvChange) -> None:
    """Write a new env version (set/unset, or a copy of an older one), live for the next deploy."""
    store = store_of(request.project, request.env)
    index = host.get_fact(EnvStoreIndex, path=store.index)
    current = stored_values(store, index)
    if request.restore is not None:
        wanted = stored_values(store, index, request.restore)
    else:
        wanted = domain.changed(current, set_values=request.set_values, unset=request.unset)
    entry = domain.next_version(index, current, wanted, actor=actor(), now=utcnow(), restored_from=request.restore)
    env_ops.env_tool(name="Install codeb-env", path=store.tool)
    label = f"env version {entry.version}" if entry else "env unchanged"
    env_ops.env_version(
        name=f"{request.project}/{request.env.value}: {label}", store=store, content=domain.render(wanted), entry=entry
    )


@deploy("codeb env fetch")
def fetch_from_backup(project: str, env: Environment) -> None:
    """Bring the env store of a project/env back from the backup server (the app server lost it)."""
    store = store_of(project, env)
    env_ops.env_tool(name="Install codeb-env", path=store.tool)
    env_ops.env_store_fetched(name=f"{project}/{env.value}: env store from the backup server", store=store)


def _index(project: str, env: Environment) -> tuple[EnvStore, EnvIndex]:
    store = store_of(project, env)
    return store, host.get_fact(EnvStoreIndex, path=store.index)


def listing(project: str, env: Environment) -> dict[str, Any]:
    """Names (no values), which come from the master env, the current version and its digest."""
    store, index = _index(project, env)
    master = sorted(domain.parse_stored(read_text(store.master) or ""))
    current = index.current
    return {
        "project": project,
        "env": env.value,
        "version": current.version if current else None,
        "digest": current.digest if current else None,
        "names": list(current.names) if current else sorted(domain.parse_stored(read_text(store.live) or "")),
        "master_names": master,
        "not_on_backup_server": list(index.unshipped),
    }


def history(project: str, env: Environment) -> list[dict[str, Any]]:
    _, index = _index(project, env)
    return [v.model_dump(mode="json", exclude={"digest"}) | {"digest": v.digest[:16]} for v in index.versions]


def value(project: str, env: Environment, key: str) -> str | None:
    """One variable's current value (admin only): from the master env for a protected name."""
    store, index = _index(project, env)
    if key in PROTECTED_VARIABLES:
        return domain.parse_stored(read_text(store.master) or "").get(key)
    return stored_values(store, index).get(domain.variable_name(key))


def version_diff(project: str, env: Environment, old: int, new: int) -> domain.NameDiff:
    store, index = _index(project, env)
    return domain.diff(stored_values(store, index, old), stored_values(store, index, new))
