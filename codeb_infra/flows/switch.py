"""Promote and rollback: the domain's upstream pointer switched between the two slots.

Read: one `codeb-state snapshot` (registry records, pointers, containers, the release log).
Decide: `domain.decisions.plan_promote` / `plan_rollback`, and a rollback's contract steps to
cancel. Apply: one `codeb-state switch` that checks, locks, moves the pointers, records, appends
the change's audit row, cancels those contract steps, starts a promote's watch of the new release
(`codeb-watch`, with the rollback planned here) and unlocks on the server; a later switch ends the
watch.
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra import host
from pyinfra.api import deploy

from codeb_infra.commands.health import HEALTH_TOOL
from codeb_infra.commands.state import SwitchWatch
from codeb_infra.config.app import HostSettings
from codeb_infra.config.monitoring import watch_metrics
from codeb_infra.controller.probe import CADDY_LOCAL_ROOT
from codeb_infra.domain import decisions
from codeb_infra.domain import watch as watch_domain
from codeb_infra.domain.changes import Plan
from codeb_infra.domain.decisions import SwitchDecision
from codeb_infra.domain.live import LiveSlots
from codeb_infra.domain.releases import ReleaseLog
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.flows import releases
from codeb_infra.flows.common import holder, read_switch, utcnow
from codeb_infra.operations import api, registry

Decide = Callable[[LiveSlots, HostSettings, SlotRequest], SwitchDecision]


def _promote(live: LiveSlots, settings: HostSettings, request: SlotRequest) -> SwitchDecision:
    decision = decisions.plan_promote(live, now=utcnow(), grace=settings.grace)
    rollback = _fallback(settings, live, decision, request)
    if rollback is None:
        return decision
    return watch_domain.announced(
        decision, rollback, settings.watch_minutes, watch_domain.unit(request.project, request.env)
    )


def _fallback(
    settings: HostSettings, live: LiveSlots, decision: SwitchDecision, request: SlotRequest
) -> SwitchDecision | None:
    """The rollback a watch of this promote would run; None when the promote starts no watch."""
    if not request.watch or settings.watch_minutes <= 0 or not decision.plan.changed:
        return None
    return watch_domain.fallback(live, decision, now=utcnow(), grace=settings.grace)


def _rollback(live: LiveSlots, settings: HostSettings, request: SlotRequest) -> SwitchDecision:
    return decisions.plan_rollback(live, to=request.to, now=utcnow(), grace=settings.grace)


def _decide(request: SlotRequest, decide: Decide) -> tuple[HostSettings, LiveSlots, SwitchDecision, bool, ReleaseLog]:
    settings = HostSettings.from_data(host.data)
    log_path = releases.log_path(settings, request.project, request.env)
    live, tool_current, log = read_switch(settings, request, log_path)
    return settings, live, decide(live, settings, request), tool_current, log


def _watch(
    settings: HostSettings, live: LiveSlots, decision: SwitchDecision, request: SlotRequest
) -> SwitchWatch | None:
    """The app server's watch of this promote, started by its switch; None when the release is not watched."""
    rollback = _fallback(settings, live, decision, request)
    if rollback is None:
        return None
    limits = watch_domain.WatchLimits(
        minutes=settings.watch_minutes,
        interval=settings.watch_interval_seconds,
        failures=settings.watch_failures,
        max_5xx=settings.watch_max_5xx,
        window=settings.watch_window_seconds,
        min_requests=settings.watch_min_requests,
    )
    paths = {
        "scheme": "http" if settings.tls == "off" else "https",
        "port": 80 if settings.tls == "off" else 443,
        "ca": [CADDY_LOCAL_ROOT, *([settings.acme_ca_root] if settings.acme_ca_root else [])],
        "health_tool": HEALTH_TOOL,
        "state_tool": settings.state_tool,
        "registry": settings.registry_dir,
        "locks": settings.locks_dir,
        "access_log": settings.access_log(live.project, live.env),
        "record_path": settings.watch_record(live.project, live.env),
        "audit_python": api.API_PYTHON,
        "textfile": watch_metrics(live.project, live.env.value),
    }
    return SwitchWatch(
        tool=settings.watch_tool,
        unit=watch_domain.unit(request.project, request.env),
        spec_path=settings.watch_spec(request.project, request.env),
        spec=watch_domain.spec(live, decision, rollback, limits, paths),
    )


def _switch(request: SlotRequest, action: str, decide: Decide) -> Plan:
    settings, live, decision, tool_current, log = _decide(request, decide)
    if not decision.plan.changed:
        host.noop(f"{request.project}/{request.env.value}: {decision.plan.note}")
        return decision.plan
    if not tool_current:
        registry.state_tool(name="Install codeb-state", path=settings.state_tool)
    moves = ", ".join(f"{c.target} -> {c.new}" for c in decision.plan.changes if c.what == "pointer")
    who = holder(action)
    # A refused switch fails the run (the lock line becomes exit 4): the switch appends its audit
    # row, cancels the rolled-back contract steps and starts the promote's watch only once it
    # switched. A watch of an earlier promote ends by itself once slots.json moves on.
    registry.switch(
        name=f"{action.capitalize()} {request.project}/{request.env.value}: {moves or 'record only'}",
        tool=settings.state_tool,
        registry_dir=settings.registry_dir,
        locks_dir=settings.locks_dir,
        decision=decision,
        holder=who,
        wait=request.lock_wait,
        break_lock=request.break_lock,
        audit=api.switch_audit(request=request, holder=who),
        cancel=releases.rolled_back_contracts(settings, log, decision.wanted) if action == "rollback" else None,
        watch=_watch(settings, live, decision, request) if action == "promote" else None,
    )
    return decision.plan


def plan_promote(request: SlotRequest) -> Plan:
    """What a promote would change here (reads only)."""
    return _decide(request, _promote)[2].plan


def plan_rollback(request: SlotRequest) -> Plan:
    """What a rollback would change here (reads only)."""
    return _decide(request, _rollback)[2].plan


@deploy("codeb promote")
def promote(request: SlotRequest) -> Plan:
    """Switch the domain to the deployed slot; the previous one enters its grace period."""
    return _switch(request, "promote", _promote)


@deploy("codeb rollback")
def rollback(request: SlotRequest) -> Plan:
    """Switch the domain back to the slot in its grace period (no container is touched)."""
    return _switch(request, "rollback", _rollback)
