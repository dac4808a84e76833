"""Registry records (ssot.json, slots.json) and the server-side tool that writes them."""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path

from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import files

from codeb_infra.commands import state as state_commands
from codeb_infra.domain.decisions import SwitchDecision
from codeb_infra.domain.names import Environment
from codeb_infra.domain.plans import record_digest
from codeb_infra.domain.registry import ProjectEnv, pair_record
from codeb_infra.domain.slots import SlotPair
from codeb_infra.facts.registry import ProjectRegistry, SlotRegistry
from codeb_infra.operations import Commands
from codeb_infra.remote.codeb_state import AUDIT_MODULE

TOOL_SOURCE = Path(__file__).resolve().parent.parent / "remote" / "codeb_state.py"
# The API's audit log, standard library only: installed beside codeb-state, which appends a switch's row.
AUDIT_SOURCE = Path(__file__).resolve().parent.parent / "api" / "audit.py"
# What `codeb-state snapshot` reports of itself: the server's tool is this one when they agree.
TOOL_DIGEST = hashlib.sha256(TOOL_SOURCE.read_bytes() + AUDIT_SOURCE.read_bytes()).hexdigest()[:16]


@operation()
def state_tool(*, path: str) -> Commands:
    """
    Install codeb-state, the server-side writer of registry records and deploy locks, and beside
    it the audit log's module it appends a switch's row with.

    **Example:**

    .. code:: python

        registry.state_tool(path="/opt/codeb/bin/codeb-state")
    """
    yield from files.put._inner(src=str(TOOL_SOURCE), dest=path, mode="755", create_remote_dir=True)
    module = posixpath.join(posixpath.dirname(path), AUDIT_MODULE)
    yield from files.put._inner(src=str(AUDIT_SOURCE), dest=module, mode="644", create_remote_dir=True)


@operation()
def slot_pair(*, registry_dir: str, tool: str, pair: SlotPair, expect: str) -> Commands:
    """
    Write one project/env's blue/green records to slots.json.

    + pair: the wanted records
    + expect: digest of the record this run planned from; the write fails if another run changed it

    **Example:**

    .. code:: python

        registry.slot_pair(registry_dir="/opt/codeb/registry", tool=tool, pair=pair, expect=digest)
    """
    table = host.get_fact(SlotRegistry, registry_dir=registry_dir)
    current = table.pair(pair.project, pair.env)
    if table.has(pair.project, pair.env) and pair_record(current) == pair_record(pair):
        host.noop(f"slots of {pair.project}/{pair.env.value} already recorded")
        return
    yield state_commands.put_record(
        tool,
        kind="slots",
        registry=registry_dir,
        project=pair.project,
        env=pair.env.value,
        expect=expect,
        record=pair_record(pair).model_dump(mode="json"),
    )


@operation()
def project_entry(
    *, registry_dir: str, tool: str, project: str, env: Environment, entry: ProjectEnv | None
) -> Commands:
    """
    Write (or, with ``entry=None``, remove) one project/env in ssot.json.

    **Example:**

    .. code:: python

        registry.project_entry(registry_dir="/opt/codeb/registry", tool=tool,
            project="myapp", env=Environment.PRODUCTION, entry=entry)
    """
    current = host.get_fact(ProjectRegistry, registry_dir=registry_dir).get(project, env)
    if current == entry:
        host.noop(f"{project}/{env.value} already registered")
        return
    yield state_commands.put_record(
        tool,
        kind="project",
        registry=registry_dir,
        project=project,
        env=env.value,
        expect=record_digest(current),
        record=None if entry is None else entry.model_dump(mode="json"),
    )


@operation()
def slot_pair_removed(*, registry_dir: str, tool: str, project: str, env: Environment) -> Commands:
    """
    Drop one project/env's blue/green records from slots.json.

    **Example:**

    .. code:: python

        registry.slot_pair_removed(registry_dir="/opt/codeb/registry", tool=tool, project="myapp", env=env)
    """
    table = host.get_fact(SlotRegistry, registry_dir=registry_dir)
    if not table.has(project, env):
        host.noop(f"no slots recorded for {project}/{env.value}")
        return
    yield state_commands.put_record(
        tool,
        kind="slots",
        registry=registry_dir,
        project=project,
        env=env.value,
        expect=record_digest(pair_record(table.pair(project, env))),
        record=None,
    )


@operation(is_idempotent=False)
def switch(
    *,
    tool: str,
    registry_dir: str,
    locks_dir: str,
    decision: SwitchDecision,
    holder: str,
    wait: float = 0.0,
    break_lock: bool = False,
    audit: state_commands.SwitchAudit | None = None,
    cancel: state_commands.SwitchCancel | None = None,
    watch: state_commands.SwitchWatch | None = None,
) -> Commands:
    """
    Promote or roll back in one server-side command: under the project's deploy lock, and only if
    slots.json still holds the record the decision was made from, move the pointers (the domain's
    first, each an atomic rename), record the new slots, append the change's audit row, record the
    rolled-back releases' contract steps cancelled, start a promoted release's watch and release
    the lock. The flow calls it only
    when its plan has changes.

    + decision: the planned switch (wanted pair, the digest it expects, the pointers to hold)
    + holder: who takes the lock, as a lock error names it
    + wait / break_lock: wait that many seconds for another run's lock / break a dead run's lock
    + audit: the audit row to append once switched (None: the API writes its own)
    + cancel: the releases whose pending contract steps the switch cancels
    + watch: the watch of the promoted release it starts, replacing any earlier one

    **Example:**

    .. code:: python

        registry.switch(tool=tool, registry_dir="/opt/codeb/registry", locks_dir="/opt/codeb/locks",
            decision=decision, holder="promote by ci #42")
    """
    pair = decision.wanted
    yield state_commands.switch(
        tool,
        registry=registry_dir,
        locks=locks_dir,
        project=pair.project,
        env=pair.env.value,
        holder=holder,
        wait=wait,
        break_lock=break_lock,
        expect=decision.expect,
        record=pair_record(pair).model_dump(mode="json"),
        pointers=list(decision.pointers),
        audit=audit,
        cancel=cancel,
        watch=watch,
    )
