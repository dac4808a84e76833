"""Cleanup: the containers of slots whose grace period ended.

Read: `read_slots`. Decide: `domain.decisions.plan_cleanup`. Apply: remove those containers and
record the slots empty, under the deploy lock.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from codeb_infra.config.app import HostSettings
from codeb_infra.domain import decisions, names
from codeb_infra.domain.changes import Plan
from codeb_infra.domain.decisions import CleanupDecision
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.domain.slots import SlotPair
from codeb_infra.flows.common import LockedRun, read_slots, utcnow
from codeb_infra.flows.releases import contract_steps
from codeb_infra.operations import podman, registry


def _decide(request: SlotRequest) -> tuple[HostSettings, CleanupDecision, bool, SlotPair]:
    settings = HostSettings.from_data(host.data)
    live, tool_current = read_slots(settings, request)
    return settings, decisions.plan_cleanup(live, now=utcnow(), force=request.force), tool_current, live.pair


def plan_cleanup(request: SlotRequest) -> Plan:
    """What a cleanup would change here (reads only)."""
    return _decide(request)[1].plan


@deploy("codeb cleanup")
def cleanup(request: SlotRequest) -> Plan:
    """Remove the containers of slots whose grace period ended (any grace/failed slot with force)."""
    settings, decision, tool_current, pair = _decide(request)
    if not decision.remove:
        host.noop(f"{request.project}/{request.env.value}: no slot to clean up")
        return decision.plan
    run = LockedRun(settings, request, "cleanup", tool_current=tool_current)
    leaving = {c.target for c in decision.plan.changes if c.what == "container"}
    for s in decision.remove:
        container = names.container_name(request.project, request.env, s)
        if container in leaving:
            run.step(
                podman.slot_removed,
                name=f"Remove {container}",
                project=request.project,
                env=request.env.value,
                slot=s.value,
            )
    run.step(
        registry.slot_pair,
        name="Record cleanup",
        registry_dir=settings.registry_dir,
        tool=settings.state_tool,
        pair=decision.cleaned,
        expect=decision.expect,
    )
    contract_steps(run, settings, request, pair, list(decision.remove))
    run.finish(f"cleanup of {request.project}/{request.env.value} failed")
    return decision.plan
