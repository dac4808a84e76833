"""The codeb API's installation on the app server (its virtualenv from a wheelhouse built on the
controller), and the audit row that a change made over SSH appends there."""

from __future__ import annotations

import base64
import json
import posixpath
from collections.abc import Callable
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.server import Arch
from pyinfra.operations import files

from codeb_infra.api.config import AUDIT_DB
from codeb_infra.commands import api as api_commands
from codeb_infra.commands import state as state_commands
from codeb_infra.controller import wheelhouse
from codeb_infra.facts.api import PythonRelease, VenvDigest
from codeb_infra.operations import Commands

API_PYTHON = "/opt/codeb/api/venv/bin/python"


@operation()
def venv(*, path: str) -> Commands:
    """
    A virtualenv at ``path`` with codeb-infra and its pinned dependencies, installed with no
    package index from wheels built on this machine for the server's Python; nothing happens while
    the venv was built from the same wheelhouse (same versions, same codeb-infra source).

    **Example:**

    .. code:: python

        api.venv(path="/opt/codeb/api/venv")
    """
    python, machine = host.get_fact(PythonRelease), host.get_fact(Arch)
    digest = wheelhouse.digest(python, machine)
    if host.get_fact(VenvDigest, venv=path) == digest:
        host.noop(f"{path} is built from wheelhouse {digest}")
        return
    archive = wheelhouse.build(python, machine)
    remote = posixpath.join(posixpath.dirname(path), f"wheelhouse-{digest}.tar")
    yield from files.put._inner(src=archive, dest=remote, mode="600")
    yield api_commands.install_venv(venv=path, archive=remote, digest=digest)


@operation(is_idempotent=False)
def audit_entry(*, python: str, entry: dict[str, Any]) -> Commands:
    """
    Append one row to the audit log on the app server (a change made through the CLI or a deploy
    script); skipped on a server whose API is not installed yet. ``entry`` holds no secret.

    **Example:**

    .. code:: python

        api.audit_entry(python="/opt/codeb/api/venv/bin/python", entry={"tool": "promote", "outcome": "allowed"})
    """
    encoded = base64.b64encode(json.dumps(entry, sort_keys=True).encode()).decode()
    yield api_commands.audit_append(python, encoded)


TOOL_OF_ACTION = {"deploy": "deploy_project", "route": "deploy_project", "remove": "remove_project"}


def _outcome_is(ok: Callable[[], object], wanted: bool) -> Callable[[], bool]:
    """An ``_if`` condition: whether the run's outcome, read when the operation runs, is ``wanted``."""

    def condition() -> bool:
        return ok() == wanted

    return condition


def change_entry(*, request: Any, holder: str) -> dict[str, Any] | None:
    """The audit row of a change made over SSH (CLI or deploy script), without its outcome: the SSH
    user and the controller's user@host as actor. None for a change the API runs: the API writes
    a fuller row itself."""
    if host.data.get("codeb_api_request"):
        return None
    import getpass
    import socket

    action = holder.split(" by ", 1)[0].split()[0]
    connector = "local" if host.name.startswith("@local") else f"ssh {host.data.get('ssh_user') or 'root'}"
    return {
        "actor": f"{connector} from {getpass.getuser()}@{socket.gethostname()}",
        "tool": TOOL_OF_ACTION.get(action, action),
        "project": request.project,
        "env": request.env.value,
        "source": "cli",
        "params": {k: v for k, v in request.model_dump(mode="json").items() if k not in ("lock_wait",)},
    }


def switch_audit(*, request: Any, holder: str) -> state_commands.SwitchAudit | None:
    """What `codeb-state switch` appends once it switched: the change's row, allowed (a refused
    switch fails the run and writes no row); none for a change the API runs."""
    entry = change_entry(request=request, holder=holder)
    if entry is None:
        return None
    return state_commands.SwitchAudit(python=API_PYTHON, database=AUDIT_DB, entry={**entry, "outcome": "allowed"})


def steps_audit(*, request: Any, holder: str) -> state_commands.SwitchAudit | None:
    """What `codeb-state steps` appends with the change's outcome: its row (`change_entry`); none
    for a change the API runs."""
    entry = change_entry(request=request, holder=holder)
    if entry is None:
        return None
    return state_commands.SwitchAudit(python=API_PYTHON, database=AUDIT_DB, entry=entry)


def record_change(*, request: Any, holder: str, ok: Any) -> None:
    """The audit row of a change made over SSH (`change_entry`), allowed when every step ran,
    failed otherwise; none for a change the API runs."""
    entry = change_entry(request=request, holder=holder)
    if entry is None:
        return
    action = holder.split(" by ", 1)[0].split()[0]
    for outcome, wanted in (("allowed", True), ("failed", False)):
        audit_entry(
            name=f"Audit: {action} {outcome}",
            python=API_PYTHON,
            entry={**entry, "outcome": outcome},
            _if=_outcome_is(ok, wanted),
            _ignore_errors=True,
        )
