"""The decision of each flow, from the live state it read: what changes (the plan `--dry` prints)
and what the apply step needs to make it so. Pure: no host, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain import names, plans, slots
from codeb_infra.domain.changes import Change, Plan
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.live import LiveDeploy, LiveSlots
from codeb_infra.domain.names import Slot
from codeb_infra.domain.registry import ProjectEnv, pair_record
from codeb_infra.domain.slots import SlotPair, SlotRecord, SlotState


class ZoneNames(BaseModel):
    """A project's names in one zone this app server serves, and whether PowerDNS already answers them."""

    model_config = ConfigDict(frozen=True)

    zone: str
    names: tuple[str, ...]
    owner: str
    current: bool


class SwitchDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan: Plan
    wanted: SlotPair
    expect: str
    pointers: tuple[tuple[str, str], ...]  # (path, address) to hold, the domain's first


class DeployDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan: Plan
    deploy: plans.DeployPlan
    routing_only: bool  # the release already runs: only domains, site, pointers and DNS may change
    copy_image: bool


class CleanupDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan: Plan
    remove: tuple[Slot, ...]  # slots whose container goes
    cleaned: SlotPair
    expect: str


def _label(record: SlotRecord) -> str:
    image = f" {record.release.image}" if record.release else ""
    until = f" until {record.grace_until.isoformat()}" if record.state is SlotState.GRACE and record.grace_until else ""
    return f"{record.state.value}{image}{until}"


def slot_changes(live: LiveSlots, wanted: SlotPair, why: str) -> list[Change]:
    """One change per slot whose record moves."""
    return [
        Change(
            host=live.host,
            what="slot record",
            target=f"{live.project}/{live.env.value} {s.value}",
            old=_label(live.pair.record(s)),
            new=_label(wanted.record(s)),
            why=why,
        )
        for s in Slot
        if live.pair.record(s) != wanted.record(s)
        or (not live.existed and wanted.record(s).state is not SlotState.EMPTY)
    ]


def pointer_changes(
    live: LiveSlots, pair: SlotPair, entry: ProjectEnv, why: str
) -> tuple[list[Change], list[tuple[str, str]]]:
    """Pointer files that move, and every (path, address) the pair wants, the domain's first."""
    changes, wanted = [], []
    for role, address in plans.pointer_targets(pair, entry).items():
        if address is None:
            continue
        path = live.pointer_paths.get(role, role)
        wanted.append((path, address))
        if live.pointers.get(role) != address:
            changes.append(
                Change(
                    host=live.host,
                    what="pointer",
                    target=path,
                    old=live.pointers.get(role),
                    new=address,
                    why=why if role == "active" else "the preview domain follows the other slot",
                )
            )
    return changes, wanted


def _known(live: LiveSlots) -> ProjectEnv:
    if live.entry is None:
        raise CodebError(f"unknown project {live.project}/{live.env.value}: deploy it first")
    return live.entry


def plan_switch(live: LiveSlots, action: str, wanted: SlotPair | None) -> SwitchDecision:
    """Promote or rollback: `wanted` is the transition's result (None: nothing to switch)."""
    project = f"{live.project}/{live.env.value}"
    entry = _known(live)
    pair = wanted or live.pair
    if not live.existed and pair == live.pair:
        raise CodebError(f"{project}: nothing deployed yet")
    active = pair.active
    if active is not None and not live.healthy(active, pair):
        raise live.pair.error(
            action, active, "its container is missing, stopped or runs something else than recorded; deploy again"
        )
    why = f"{action}: {active.value} serves the domain" if active else action
    moves, targets = pointer_changes(live, pair, entry, why)
    changes = moves + slot_changes(live, pair, action)
    note = "" if changes else f"{active.value if active else 'nothing'} already active"
    return SwitchDecision(
        plan=Plan(action=f"{action} {project}", host=live.host, changes=tuple(changes), note=note),
        wanted=pair,
        expect=live.expect,
        pointers=tuple(targets),
    )


def plan_promote(live: LiveSlots, *, now: datetime, grace: timedelta) -> SwitchDecision:
    _known(live)
    return plan_switch(live, "promote", plans.promote(live.pair, now=now, grace=grace))


def plan_rollback(live: LiveSlots, *, to: Slot | None, now: datetime, grace: timedelta) -> SwitchDecision:
    _known(live)
    return plan_switch(live, "rollback", plans.rollback(live.pair, to=to, now=now, grace=grace))


def plan_cleanup(live: LiveSlots, *, now: datetime, force: bool) -> CleanupDecision:
    project = f"{live.project}/{live.env.value}"
    _known(live)
    gone = slots.cleanable(live.pair, now=now, force=force)
    cleaned = slots.cleaned(live.pair, gone)
    changes = []
    for s in gone:
        record = live.pair.record(s)
        container = live.container(s)
        why = (
            "failed"
            if record.state is SlotState.FAILED
            else (
                f"grace ended {record.grace_until.isoformat()}"
                if record.grace_until and record.grace_until <= now
                else "forced"
            )
        )
        if container is not None:
            changes.append(
                Change(host=live.host, what="container", target=container.name, old=container.image, new=None, why=why)
            )
    changes += slot_changes(live, cleaned, "cleanup") if gone else []
    return CleanupDecision(
        plan=Plan(
            action=f"cleanup {project}",
            host=live.host,
            changes=tuple(changes),
            note="" if gone else "no slot to clean up",
        ),
        remove=tuple(gone),
        cleaned=cleaned,
        expect=live.expect,
    )


def plan_remove(
    live: LiveSlots, *, force: bool, site: str | None, site_path: str, dns_owners: Sequence[tuple[str, str]]
) -> Plan:
    """Everything of the project/env that is still on the server goes; a live one needs force."""
    project = f"{live.project}/{live.env.value}"
    if live.pair.active is not None and not force:
        raise live.pair.error(
            "remove", live.pair.active, "it serves the domain; pass force=true to take the project offline"
        )
    changes = [
        Change(host=live.host, what="container", target=c.name, old=c.image, new=None, why="remove")
        for c in sorted(live.containers.values(), key=lambda c: c.name)
    ]
    if site is not None:
        changes.append(
            Change(host=live.host, what="Caddy site", target=site_path, old="present", new=None, why="remove")
        )
    changes += [
        Change(
            host=live.host,
            what="pointer",
            target=live.pointer_paths.get(role, role),
            old=address,
            new=None,
            why="remove",
        )
        for role, address in live.pointers.items()
        if address is not None
    ]
    changes += [
        Change(host=live.host, what="DNS records", target=zone, old=f"owned by {owner}", new=None, why="remove")
        for zone, owner in dns_owners
    ]
    if live.existed:
        changes.append(
            Change(host=live.host, what="slot records", target=project, old="recorded", new=None, why="remove")
        )
    if live.entry is not None:
        changes.append(
            Change(host=live.host, what="registry entry", target=project, old=live.entry.domain, new=None, why="remove")
        )
    return Plan(
        action=f"remove {project}", host=live.host, changes=tuple(changes), note="" if changes else "not on this server"
    )


def _entry_label(entry: ProjectEnv | None) -> str | None:
    if entry is None:
        return None
    aliases = f" (+{', '.join(entry.aliases)})" if entry.aliases else ""
    return (
        f"{entry.domain}{aliases}, port {entry.container_port}, health {entry.health_path}, "
        f"blue {entry.ports[Slot.BLUE]}/green {entry.ports[Slot.GREEN]}"
    )


def plan_deploy(
    live: LiveDeploy,
    deploy: plans.DeployPlan,
    *,
    site: str,
    records: Sequence[ZoneNames],
    image: str,
    image_id: str | None,
) -> DeployDecision:
    """What a deploy of `deploy.release` changes, given the rendered site and the DNS it wants."""
    host, project = live.host, f"{live.project}/{live.env.value}"
    serving = deploy.serving
    routing_only = (
        serving is not None
        and live.healthy(serving)
        and (live.container(serving) is not None and live.container(serving).env_digest == live.env_digest)  # type: ignore[union-attr]
    )
    copy_image = image_id is not None and (live.remote_image_id or "").removeprefix("sha256:") != image_id
    changes: list[Change] = []
    pair = live.pair if routing_only else deploy.deployed
    if not routing_only:
        target = deploy.target
        name = names.container_name(live.project, live.env, target)
        if copy_image:
            changes.append(
                Change(
                    host=host,
                    what="image",
                    target=image,
                    old=live.remote_image_id,
                    new=image_id,
                    why="copied from this machine (--push)",
                )
            )
        container = live.container(target)
        spec = plans.container_spec(deploy.release, live.network)
        if (
            container is None
            or not container.running
            or container.spec != spec
            or container.env_digest != live.env_digest
        ):
            why = (
                "no container yet"
                if container is None
                else "stopped"
                if not container.running
                else "new release"
                if container.spec != spec
                else "env files changed"
            )
            changes.append(
                Change(
                    host=host,
                    what="container",
                    target=name,
                    old=container.image if container else None,
                    new=image,
                    why=why,
                )
            )
        changes += slot_changes(live, deploy.deployed, "once its health check passes (else: failed)")
    if live.entry != deploy.entry:
        changes.append(
            Change(
                host=host,
                what="registry entry",
                target=project,
                old=_entry_label(live.entry),
                new=_entry_label(deploy.entry),
                why="ssot.json",
            )
        )
    changes += pointer_changes(live, pair, deploy.entry, "deploy")[0]
    changes += [
        Change(
            host=host,
            what="DNS records",
            target=r.zone,
            old=None,
            new=", ".join(r.names) + " -> app server",
            why=f"owned by {r.owner}",
        )
        for r in records
        if not r.current
    ]
    if (live.site or "") != site.rstrip("\n"):
        changes.append(
            Change(
                host=host,
                what="Caddy site",
                target=live.site_path,
                old=None if live.site is None else "content differs",
                new=", ".join(deploy.entry.domains),
                why="site file content changes; Caddy reloads",
            )
        )
    state = pair.record(serving).state.value if serving is not None else ""
    note = (
        f"{image} is already {state} in {serving.value}"
        if routing_only and serving is not None
        else ("" if routing_only else f"health check of {deploy.target.value} before anything routes to it")
    )
    return DeployDecision(
        plan=Plan(action=f"deploy {image} to {project}", host=host, changes=tuple(changes), note=note),
        deploy=deploy,
        routing_only=routing_only,
        copy_image=copy_image,
    )


def record_of(pair: SlotPair) -> dict[str, Any]:
    return pair_record(pair).model_dump(mode="json")
