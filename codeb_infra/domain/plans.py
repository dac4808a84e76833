"""What a deploy, promote, rollback or cleanup will change, computed before any command runs."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain import names, ports, slots
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.registry import ProjectEnv, Projects, pair_record
from codeb_infra.domain.requests import DeployRequest
from codeb_infra.domain.slots import Release, SlotPair, SlotState


def record_digest(record: BaseModel | None) -> str:
    """Digest of a registry record as codeb-state computes it on the server (compare-and-swap)."""
    from codeb_infra.remote.codeb_state import digest

    return digest(None if record is None else record.model_dump(mode="json"))


def pair_digest(pair: SlotPair, *, existed: bool) -> str:
    return record_digest(pair_record(pair) if existed else None)


def container_spec(release: Release, network: str) -> str:
    """What a slot container runs; a container is replaced only when this changes."""
    payload = json.dumps({**release.model_dump(mode="json"), "network": network}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class DeployPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: Slot
    serving: Slot | None  # the slot that already holds this release (then only routing may change)
    release: Release
    entry: ProjectEnv
    deployed: SlotPair
    failed: SlotPair
    preview_domain: str


def plan_deploy(
    request: DeployRequest,
    projects: Projects,
    pair: SlotPair,
    *,
    base_domain: str,
    now: datetime,
    image_id: str | None = None,
    env_changed: bool = False,
) -> DeployPlan:
    """``env_changed``: the slot already serving this release reads other env files than a new
    slot would; an ACTIVE one then stays as it is and the release goes beside it (blue-green)."""
    project, env = request.project, request.env
    current = projects.get(project, env)
    domain = request.domain or (current.domain if current else names.default_domain(project, env, base_domain))
    aliases = request.aliases if request.aliases is not None else (current.aliases if current else ())
    preview = names.preview_domain(project, env, base_domain)
    for name in (domain, *aliases):
        owner = projects.domain_owner(name)
        if (owner is not None and owner != (project, env)) or name == preview:
            taken_by = f"{owner[0]}/{owner[1].value}" if owner else "the preview"
            raise CodebError(f"domain {name} already belongs to {taken_by}")
    aliases = tuple(a for a in aliases if a != domain)
    if current is None:
        base = ports.allocate_base(project, env, projects.taken_ports())
        slot_ports = {Slot.BLUE: base, Slot.GREEN: base + 1}
    else:
        slot_ports = current.ports
    entry = ProjectEnv(
        domain=domain,
        container_port=request.container_port,
        health_path=request.health_path,
        ports=slot_ports,
        aliases=aliases,
    )
    wanted = Release(
        image=request.image,
        port=0,
        container_port=request.container_port,
        health_path=request.health_path,
        image_id=image_id,
    )
    serving = already_serving(pair, wanted)
    if serving is not None and env_changed and pair.record(serving).state is SlotState.ACTIVE:
        serving = None
    target = serving if serving is not None else slots.deploy_target(pair, force=request.force, now=now)
    release = wanted.model_copy(update={"port": slot_ports[target]})
    return DeployPlan(
        target=target,
        serving=serving,
        release=release,
        entry=entry,
        deployed=pair if serving is not None else slots.deployed(pair, target, release, now=now),
        failed=pair if serving is not None else slots.failed(pair, target, release, "health check failed", now=now),
        preview_domain=preview,
    )


def already_serving(pair: SlotPair, release: Release) -> Slot | None:
    """The slot that already holds this release as ACTIVE or DEPLOYED (a re-run has nothing to do)."""
    for s in Slot:
        record = pair.record(s)
        if (
            record.state in (SlotState.ACTIVE, SlotState.DEPLOYED)
            and record.release is not None
            and record.release.model_copy(update={"port": release.port}) == release
        ):
            return s
    return None


def pointer_targets(pair: SlotPair, entry: ProjectEnv) -> dict[str, str | None]:
    """Where the domain and the preview domain should send requests for this pair."""
    active = pair.active
    if active is None:
        deployed = [s for s in Slot if pair.record(s).state is SlotState.DEPLOYED]
        preview = deployed[0] if deployed else None
    else:
        preview = active.other
    return {
        "active": f"127.0.0.1:{entry.ports[active]}" if active else None,
        "preview": f"127.0.0.1:{entry.ports[preview]}" if preview else None,
    }


def promote(pair: SlotPair, *, now: datetime, grace: timedelta) -> SlotPair | None:
    """The promoted pair, or None when a slot is active and the other holds nothing new (a re-run).

    A FAILED other slot is an error, not a no-op: the user asked to ship a release that failed.
    """
    active = pair.active
    if active is not None and pair.record(active.other).state in (SlotState.GRACE, SlotState.EMPTY):
        return None
    return slots.promoted(pair, now=now, grace=grace)


def rollback(pair: SlotPair, *, to: Slot | None, now: datetime, grace: timedelta) -> SlotPair | None:
    """The rolled-back pair, or None when `to` is already active."""
    if to is not None and pair.active is to:
        return None
    if to is not None and pair.record(to).state is not SlotState.GRACE:
        raise pair.error("roll back to", to, "nothing is in its grace period there")
    return slots.rolled_back(pair, now=now, grace=grace)


def require_known(projects: Projects, project: str, env: Environment) -> ProjectEnv:
    return projects.require(project, env)
