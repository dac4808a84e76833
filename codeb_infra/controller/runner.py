"""Run a flow against an inventory through pyinfra's API (what the CLI and CI scripts call): apply
it, or (dry) only plan it. A lifecycle flow connects to the app server(s) alone."""

from __future__ import annotations

import importlib
import logging
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyinfra.api import Config, Host, State
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.api.state import BaseStateCallback
from pyinfra.context import ctx_host, ctx_inventory, ctx_state

from codeb_infra import flows
from codeb_infra.controller import transport
from codeb_infra.domain.changes import Change, Plan
from codeb_infra.domain.errors import CodebError, LockHeld, PlanStale, PortTaken, RunFailed
from codeb_infra.remote.codeb_state import CHANGED_MEANWHILE, LOCK_HELD, PORT_TAKEN

# The module (pyinfra.api re-exports its decorator under the same name), typed Any: its
# solve_operation_consistency is untyped and is swapped for a recording wrapper below.
pyinfra_operation: Any = importlib.import_module("pyinfra.api.operation")


class _RunState(State):
    """pyinfra's state, plus each host's SSH error from connecting (to name an unreachable server)."""

    codeb_connect_errors: dict[str, str]


@dataclass
class RunResult:
    ok: bool
    changed: int = 0
    failed_hosts: list[str] = field(default_factory=list)


def _configure_logging(verbose: bool) -> None:
    logger = logging.getLogger("pyinfra")
    if not any(getattr(h, "_codeb", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._codeb = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.ERROR)


class _ConnectErrors(BaseStateCallback):
    """Keeps each host's SSH error, so an unreachable server is named with its reason."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def host_connect_error(self, state: State, host: Any, error: Any) -> None:  # type: ignore[override]
        self.errors[host.name] = str(error.args[0] if error.args else error)


def _unreachable(errors: dict[str, str]) -> RunFailed:
    said = "; ".join(f"{name}: {message}" for name, message in sorted(errors.items()))
    return RunFailed(f"cannot reach {said} (check the server's address, SSH port, user and key in the inventory)")


def _load_inventory(inventory: str, state: State, data: dict[str, Any] | None) -> Any:
    # Imported here: pyinfra_cli gevent-patches the whole process when imported, which only a run needs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gevent's note that ssl was imported before patching
        from pyinfra_cli.inventory import make_inventory

    if inventory.endswith(".py") and not os.path.isfile(inventory):
        raise CodebError(f"inventory file {inventory} does not exist (pass -i PATH, or -i @local)")
    try:
        return make_inventory(inventory, cwd=state.cwd, override_data=data or {})
    except CodebError:
        raise
    except Exception as error:  # an inventory file is user code: whatever it raises is bad input
        raise CodebError(f"inventory {inventory} could not be loaded: {type(error).__name__}: {error}") from None


def _is_app(state: State, host: Any) -> bool:
    with ctx_state.use(state), ctx_host.use(host):
        return flows.is_app_host()


def _state(
    inventory: str, data: dict[str, Any] | None, *, app_only: bool = False, require_any: bool = True
) -> _RunState:
    # As pyinfra's CLI does: inventory files are executed with a state in context.
    state = _RunState(check_for_changes=True)
    state.cwd = os.getcwd()
    ctx_state.set(state)
    loaded = _load_inventory(inventory, state, data)
    ctx_inventory.set(loaded)
    state.init(loaded, Config())
    if app_only:
        # A flow of one project's slots needs the app server alone: connect to nothing else.
        state.limit_hosts = [h for h in loaded if _is_app(state, h)]
        if not state.limit_hosts:
            raise CodebError(f"{inventory} has no app host (group `app`, or @local)")
    state.print_output = False
    state.print_noop_info = True
    connect_errors = _ConnectErrors()
    state.add_callback_handler(connect_errors)
    state.add_callback_handler(transport.NoDelay())
    try:
        connect_all(state)
    except PyinfraError:
        if require_any:
            raise _unreachable(connect_errors.errors) from None
    state.codeb_connect_errors = connect_errors.errors
    return state


def _require_connected(state: _RunState, hosts: list[Any]) -> None:
    errors = {
        h.name: state.codeb_connect_errors.get(h.name, "not connected") for h in hosts if h not in state.active_hosts
    }
    if errors:
        raise _unreachable(errors)


def app_hosts(state: _RunState) -> list[Host]:
    """The inventory's app hosts; an unreachable one is an error naming it and why."""
    hosts = [host for host in state.inventory if _is_app(state, host)]
    _require_connected(state, hosts)
    return hosts


def _refusal(state: State, hosts: list[Any], prefix: str) -> str | None:
    """The rest of the first line a failed step wrote to stderr starting with ``prefix`` (a
    server-side tool's refusal), naming its host."""
    for host in hosts:
        for op_data in state.ops.get(host, {}).values():
            meta = op_data.operation_meta
            if not meta.is_complete() or meta.did_succeed() or meta._combined_output is None:
                continue
            for line in meta._combined_output.stderr_lines:
                if line.startswith(prefix):
                    return f"on {host.name}: {line.removeprefix(prefix)}"
    return None


def _lock_held(state: State, hosts: list[Any]) -> LockHeld | None:
    """A failed step refused a lock another run holds."""
    said = _refusal(state, hosts, LOCK_HELD)
    return LockHeld(said) if said else None


def _port_taken(state: State, hosts: list[Any]) -> PlanStale | None:
    """A failed step's planned port went to another deploy meanwhile, or the records its plan
    was made from changed before its first step."""
    taken = _refusal(state, hosts, PORT_TAKEN)
    if taken:
        return PortTaken(taken)
    changed = _refusal(state, hosts, CHANGED_MEANWHILE)
    return PlanStale(changed) if changed else None


def _step_failed(state: State, hosts: list[Any]) -> RunFailed | None:
    """The last line the last failed step wrote to stderr (a flow's own failure report comes last),
    naming its host."""
    for host in hosts:
        for op_data in reversed(list(state.ops.get(host, {}).values())):
            meta = op_data.operation_meta
            if meta.is_complete() and not meta.did_succeed() and meta._combined_output is not None:
                said = [line for line in meta._combined_output.stderr_lines if line.strip()]
                if said:
                    return RunFailed(f"on {host.name}: {said[-1].strip()}")
    return None


@contextmanager
def _op_names_per_host() -> Iterator[dict[tuple[str, str], set[str]]]:
    """Each host's own name of each operation. pyinfra keeps one set of names per operation
    across all hosts, so the names are caught where it gives an operation its hash."""
    names: dict[tuple[str, str], set[str]] = {}
    solve = pyinfra_operation.solve_operation_consistency

    def recording(op_names: set[str], state: State, host: Any) -> Any:
        order, op_hash = solve(op_names, state, host)
        names.setdefault((host.name, op_hash), set()).update(op_names)
        return order, op_hash

    pyinfra_operation.solve_operation_consistency = recording
    try:
        yield names
    finally:
        pyinfra_operation.solve_operation_consistency = solve


def _planned(state: State, hosts: list[Any], action: str, names: dict[tuple[str, str], set[str]]) -> list[Plan]:
    """pyinfra's own change detection (what `pyinfra --dry` shows): per host, each operation that
    would run commands, as a change; nothing was executed."""
    plans = []
    for host in hosts:
        changes = []
        for op_hash in state.get_op_order():
            op_data = state.ops.get(host, {}).get(op_hash)
            if op_data is None or not op_data.operation_meta._maybe_is_change:
                continue
            conditional = bool(op_data.global_arguments.get("_if"))
            named = names.get((host.name, op_hash)) or state.op_meta[op_hash].names
            changes.append(
                Change(
                    host=host.name,
                    what="operation",
                    target=", ".join(sorted(named)),
                    why="if the steps before it change something" if conditional else "would run",
                )
            )
        plans.append(Plan(action=action, host=host.name, changes=tuple(changes)))
    return plans


PORT_ATTEMPTS = 8


def run_flow(
    inventory: str,
    flow: Callable[..., Any],
    *args: Any,
    data: dict[str, Any] | None = None,
    verbose: bool = True,
    every_host: bool = False,
) -> RunResult:
    """Prepare ``flow`` on the app host(s) of ``inventory`` (or on every host) and execute it.

    A step refused because another run holds the project's lock raises LockHeld. A new project
    whose planned port another deploy took meanwhile, or a deploy whose registry records changed
    while it waited for the lock (nothing written either way), is planned and run again, after a
    short random pause, up to PORT_ATTEMPTS times."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return _run_flow_once(inventory, flow, *args, data=data, verbose=verbose, every_host=every_host)
        except PlanStale as taken:
            if attempt == PORT_ATTEMPTS:
                raise
            print(f"{taken}; planning again ({attempt}/{PORT_ATTEMPTS})", file=sys.stderr, flush=True)
            time.sleep(random.uniform(0.2, 1.5))
    raise AssertionError("unreachable")


def _run_flow_once(
    inventory: str,
    flow: Callable[..., Any],
    *args: Any,
    data: dict[str, Any] | None,
    verbose: bool,
    every_host: bool,
) -> RunResult:
    _configure_logging(verbose)
    state = _state(inventory, data, app_only=not every_host)
    try:
        if every_host:
            _require_connected(state, list(state.inventory))
        hosts = list(state.inventory.get_active_hosts()) if every_host else app_hosts(state)
        if not hosts:
            raise CodebError(f"{inventory} has no app host (group `app`, or @local)")
        add_deploy(state, flow, *args, host=hosts)
        try:
            run_ops(state)
        except PyinfraError:
            # Every host failed ("No hosts remaining!"): say why, from the step that failed.
            raise (
                _lock_held(state, hosts)
                or _port_taken(state, hosts)
                or _step_failed(state, hosts)
                or RunFailed(f"failed on {', '.join(sorted(h.name for h in state.failed_hosts))}")
            ) from None
        changed = sum(state.get_meta_for_host(h).ops_change for h in hosts)
        failed = [h.name for h in state.failed_hosts]
        refused = (_lock_held(state, hosts) or _port_taken(state, hosts)) if failed else None
        if refused is not None:
            raise refused
        return RunResult(ok=not failed, changed=changed, failed_hosts=failed)
    finally:
        disconnect_all(state)


def dry_run_flow(
    inventory: str, flow: Callable[..., Any], *args: Any, action: str, data: dict[str, Any] | None = None
) -> list[Plan]:
    """Prepare ``flow`` on every host as pyinfra's `--dry` does (facts read, no operation
    executed) and return what each host's operations would change."""
    _configure_logging(False)
    state = _state(inventory, data)
    try:
        _require_connected(state, list(state.inventory))
        hosts = list(state.inventory.get_active_hosts())
        with _op_names_per_host() as names:
            add_deploy(state, flow, *args, host=hosts)
        return _planned(state, hosts, action, names)
    finally:
        disconnect_all(state)


def plan_flow(
    inventory: str, planner: Callable[..., Plan], *args: Any, data: dict[str, Any] | None = None
) -> list[Plan]:
    """Call a flow's planner (fact reads and a pure decision, no operations) on each app host."""
    return read_facts(inventory, planner, *args, data=data)


def read_facts(inventory: str, reader: Callable[..., Any], *args: Any, data: dict[str, Any] | None = None) -> list[Any]:
    """Call a fact-reading function (no operations) on each app host."""
    _configure_logging(False)
    state = _state(inventory, data, app_only=True)
    try:
        results = []
        for host in app_hosts(state):
            with ctx_state.use(state), ctx_host.use(host):
                results.append(reader(*args))
        return results
    except PyinfraError:
        raise
    finally:
        disconnect_all(state)


def read_groups(
    inventory: str, readers: dict[str, Callable[[], Any]], data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Call each reader (fact reads, no operations) on the first reachable host of its group;
    a group none of whose hosts answered gets None, and so does every group when none answered."""
    _configure_logging(False)
    try:
        state = _state(inventory, data)
    except RunFailed:
        return dict.fromkeys(readers)
    try:
        results: dict[str, Any] = {}
        for group, reader in readers.items():
            hosts = [h for h in state.inventory.get_group(group, default=[]) if h in state.active_hosts]
            if not hosts:
                results[group] = None
                continue
            with ctx_state.use(state), ctx_host.use(hosts[0]):
                results[group] = reader()
        return results
    finally:
        disconnect_all(state)


def read_every_host(
    inventory: str, reader: Callable[[str | None], Any], data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Call ``reader(error)`` in the context of every host of the inventory: ``error`` is None for
    a connected host (the reader may read facts) and why it could not be reached otherwise (the
    reader may still look at its groups and data)."""
    _configure_logging(False)
    state = _state(inventory, data, require_any=False)
    try:
        results: dict[str, Any] = {}
        for host in state.inventory:
            error = None if host in state.active_hosts else state.codeb_connect_errors.get(host.name, "not connected")
            with ctx_state.use(state), ctx_host.use(host):
                results[host.name] = reader(error)
        return results
    finally:
        disconnect_all(state)


@dataclass
class CommandResult:
    host: str
    ok: bool
    stdout: str
    stderr: str


def run_command(
    inventory: str, group: str, build: Callable[[Any], Any], data: dict[str, Any] | None = None
) -> CommandResult:
    """Run the command line `build(host_data)` makes on the first host of `group` and return what
    it printed (for commands whose output is the answer, e.g. a restore drill's report)."""
    _configure_logging(False)
    state = _state(inventory, data)
    try:
        hosts = [h for h in state.inventory.get_group(group, default=[]) if h in state.active_hosts]
        if not hosts:
            raise CodebError(f"{inventory} has no reachable `{group}` server")
        ok, output = hosts[0].run_shell_command(build(hosts[0].data))
        return CommandResult(hosts[0].name, ok, output.stdout, output.stderr)
    finally:
        disconnect_all(state)


@contextmanager
def connected(
    inventory: str, data: dict[str, Any] | None = None, *, optional: Collection[str] = ()
) -> Iterator[_RunState]:
    """Every host of ``inventory`` connected, for a flow that runs its steps one by one across
    servers and waits between them (a migration); disconnected at the end. A host named in
    ``optional`` may stay unreachable: its error is in ``state.codeb_connect_errors``."""
    _configure_logging(False)
    state = _state(inventory, data, require_any=False)
    try:
        _require_connected(state, [h for h in state.inventory if h.name not in optional])
        yield state
    finally:
        disconnect_all(state)


def inventory_hosts(inventory: str, data: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each host's data as the inventory gives it, without connecting to any (checks of input
    that come before the first remote command)."""
    state = State()
    state.cwd = os.getcwd()
    with ctx_state.use(state):
        loaded = _load_inventory(inventory, state, data)
    return {h.name: dict(h.data.dict()) for h in loaded}
