"""Promote and rollback: the domain's upstream pointer switched between the two slots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pyinfra import host
from pyinfra.api import deploy

from codeb_infra.domain import plans
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.domain.slots import SlotPair
from codeb_infra.operations import registry
from codeb_infra.config.app import HostSettings
from codeb_infra.flows.common import LockedRun, healthy_container, pointer_steps, pointers, read_context, slot_containers, utcnow


def _switch(request: SlotRequest, action: str, transition: Callable[[SlotPair, datetime, HostSettings], SlotPair | None]) -> None:
    settings, projects, pair, existed = read_context(request)
    entry = projects.require(request.project, request.env)
    wanted = transition(pair, utcnow(), settings) or pair
    if not existed and wanted == pair:
        raise CodebError(f"{request.project}/{request.env.value}: nothing deployed yet")
    active = wanted.active
    containers = slot_containers(request)
    if active is not None and not healthy_container(wanted, active, containers, settings):
        raise pair.error(action, active, "its container is missing, stopped or runs something else than recorded; deploy again")
    if wanted == pair and pointers(settings, request) == plans.pointer_targets(pair, entry):
        host.noop(f"{request.project}/{request.env.value}: {active.value if active else 'nothing'} already active")
        return
    run = LockedRun(settings, request, action)
    pointer_steps(run, settings, request, wanted, entry)
    run.step(
        registry.slot_pair, name=f"Record {action}", registry_dir=settings.registry_dir, tool=settings.state_tool,
        pair=wanted, expect=plans.pair_digest(pair, existed=existed),
    )
    run.finish(f"{action} of {request.project}/{request.env.value} failed")


@deploy("codeb promote")
def promote(request: SlotRequest) -> None:
    """Switch the domain to the deployed slot; the previous one enters its grace period."""
    _switch(request, "promote", lambda pair, now, s: plans.promote(pair, now=now, grace=s.grace))


@deploy("codeb rollback")
def rollback(request: SlotRequest) -> None:
    """Switch the domain back to the slot in its grace period (no container is touched)."""
    _switch(request, "rollback", lambda pair, now, s: plans.rollback(pair, to=request.to, now=now, grace=s.grace))
