"""Cleanup: the containers of slots whose grace period ended."""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import deploy

from codeb_infra.domain import names, plans, slots
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.operations import podman, registry
from codeb_infra.flows.releases import contract_steps
from codeb_infra.flows.common import LockedRun, read_context, slot_containers, utcnow


@deploy("codeb cleanup")
def cleanup(request: SlotRequest) -> None:
    """Remove the containers of slots whose grace period ended (any grace/failed slot with force)."""
    settings, projects, pair, existed = read_context(request)
    projects.require(request.project, request.env)
    gone = slots.cleanable(pair, now=utcnow(), force=request.force)
    containers = slot_containers(request)
    leftovers = [s for s in gone if names.container_name(request.project, request.env, s) in containers]
    if not gone:
        host.noop(f"{request.project}/{request.env.value}: no slot to clean up")
        return
    run = LockedRun(settings, request, "cleanup")
    for s in leftovers:
        run.step(podman.slot_removed, name=f"Remove {names.container_name(request.project, request.env, s)}", project=request.project, env=request.env.value, slot=s.value)
    run.step(
        registry.slot_pair, name="Record cleanup", registry_dir=settings.registry_dir, tool=settings.state_tool,
        pair=slots.cleaned(pair, gone), expect=plans.pair_digest(pair, existed=existed),
    )
    contract_steps(run, settings, request, pair, gone)
    run.finish(f"cleanup of {request.project}/{request.env.value} failed")
