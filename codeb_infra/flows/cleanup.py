"""Cleanup: the containers of slots whose grace period ended, and the contract steps that waits for.

Read: `read_slots` and the release log. Decide: `domain.decisions.plan_cleanup` and
`domain.releases.contract_decisions`. Apply: remove those containers, record the slots empty, run
(or cancel) the contract steps, under the deploy lock.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from codeb_infra.config.app import HostSettings
from codeb_infra.domain import decisions, names
from codeb_infra.domain import releases as release_domain
from codeb_infra.domain.changes import Plan
from codeb_infra.domain.decisions import CleanupDecision
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.flows.common import LockedRun, read_slots, utcnow
from codeb_infra.flows.releases import contract_steps, contract_work
from codeb_infra.operations import podman, registry

Contracts = tuple[list[release_domain.ReleaseRecord], list[release_domain.ReleaseRecord]]


def _decide(request: SlotRequest) -> tuple[HostSettings, CleanupDecision, bool, Contracts]:
    settings = HostSettings.from_data(host.data)
    live, tool_current = read_slots(settings, request)
    decision = decisions.plan_cleanup(live, now=utcnow(), force=request.force)
    due, cancelled = contract_work(settings, request, live.pair, list(decision.remove))
    contracts = release_domain.contract_changes(live.host, due, cancelled)
    if contracts:
        plan = decision.plan.model_copy(update={"changes": (*decision.plan.changes, *contracts), "note": ""})
        decision = decision.model_copy(update={"plan": plan})
    return settings, decision, tool_current, (due, cancelled)


def plan_cleanup(request: SlotRequest) -> Plan:
    """What a cleanup would change here (reads only)."""
    return _decide(request)[1].plan


@deploy("codeb cleanup")
def cleanup(request: SlotRequest) -> Plan:
    """Remove the containers of slots whose grace period ended (any grace/failed slot with force)."""
    settings, decision, tool_current, (due, cancelled) = _decide(request)
    if not decision.plan.changed:
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
    if decision.remove:
        run.step(
            registry.slot_pair,
            name="Record cleanup",
            registry_dir=settings.registry_dir,
            tool=settings.state_tool,
            pair=decision.cleaned,
            expect=decision.expect,
        )
    contract_steps(run, settings, request, due, cancelled)
    run.finish(f"cleanup of {request.project}/{request.env.value} failed")
    return decision.plan
