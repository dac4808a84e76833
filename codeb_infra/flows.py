"""Deploy, promote, rollback and cleanup of one project/env, composed from operations.

Each flow reads the live state once, lets the pure domain decide (raising CodebError before any
command runs), and when something differs runs the operations under the project's deploy lock.
Every step after the lock runs only while the steps before it succeeded, and the lock is
released either way, so a failed health check leaves no lock behind.
"""

from __future__ import annotations

import atexit
import getpass
import hashlib
import os
import socket
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import Sha256File
from pyinfra.operations import python

from codeb_infra import images
from codeb_infra.domain import names, plans, slots
from codeb_infra.domain.names import Slot
from codeb_infra.domain.registry import ProjectEnv
from codeb_infra.domain.requests import DeployRequest, SlotRequest
from codeb_infra.domain.slots import SlotPair
from codeb_infra.facts.files import CaddySite, UpstreamPointer
from codeb_infra.facts.podman import CodebContainers, Container, ImageId, SlotRunner
from codeb_infra.facts.registry import ProjectRegistry, SlotRegistry
from codeb_infra.operations import caddy, checks, podman, powerdns, registry
from codeb_infra.project_dns import (
    external_records,
    planned_records,
    zones_with_records,
)
from codeb_infra.settings import DnsSettings, HostSettings
from codeb_infra.sites import render_site


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def is_app_host() -> bool:
    """Slots live on the app server; `@local` stands in for it."""
    return "app" in host.groups or host.name.startswith("@local")


def _all_succeeded(steps: list[OperationMeta]) -> bool:
    return all(step.did_succeed() for step in steps)


class _LockedRun:
    """Operations of one change under the deploy lock; each runs only if all before it succeeded."""

    def __init__(self, settings: HostSettings, request: DeployRequest | SlotRequest, action: str) -> None:
        self.settings = settings
        self.request = request
        self.steps: list[OperationMeta] = []
        self.holder = f"{action} by {getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} {utcnow().isoformat()}"
        self.lock = registry.state_tool(name="Install codeb-state", path=settings.state_tool)
        self.steps.append(self.lock)
        self.step(
            checks.lock,
            name=f"Lock {request.project}/{request.env.value}",
            _ignore_errors=False,
            tool=settings.state_tool, locks_dir=settings.locks_dir, project=request.project,
            env=request.env.value, holder=self.holder, wait=request.lock_wait, break_lock=request.break_lock,
        )

    def ok(self) -> bool:
        return _all_succeeded(self.steps)

    def step(self, op: Callable[..., OperationMeta], **kwargs: Any) -> OperationMeta:
        kwargs.setdefault("_ignore_errors", True)
        before = list(self.steps)
        meta = op(_if=lambda: _all_succeeded(before), **kwargs)
        self.steps.append(meta)
        return meta

    def finish(self, failure_message: str) -> None:
        ok = self.ok
        checks.unlock(
            name=f"Unlock {self.request.project}/{self.request.env.value}",
            tool=self.settings.state_tool, locks_dir=self.settings.locks_dir, project=self.request.project,
            env=self.request.env.value, holder=self.holder,
        )
        checks.failure(name="Report failure", message=failure_message, _if=lambda: not ok())


def _context(request: DeployRequest | SlotRequest) -> tuple[HostSettings, Any, SlotPair, bool]:
    settings = HostSettings.from_data(host.data)
    projects = host.get_fact(ProjectRegistry, registry_dir=settings.registry_dir)
    table = host.get_fact(SlotRegistry, registry_dir=settings.registry_dir)
    return settings, projects, table.pair(request.project, request.env), table.has(request.project, request.env)


def _containers(request: DeployRequest | SlotRequest) -> dict[str, Container]:
    found = host.get_fact(CodebContainers, project=request.project, env=request.env.value)
    return {c.name: c for c in found}


def _pointers(settings: HostSettings, request: DeployRequest | SlotRequest) -> dict[str, str | None]:
    return {
        role: host.get_fact(UpstreamPointer, path=settings.pointer_file(request.project, request.env, role))
        for role in ("active", "preview")
    }


def _pointer_steps(run: _LockedRun, settings: HostSettings, request, pair: SlotPair, entry: ProjectEnv) -> None:
    # The domain's pointer first: the switch is the one rename that matters.
    for role, address in plans.pointer_targets(pair, entry).items():
        if address is not None:
            run.step(
                caddy.upstream, name=f"Point {role} upstream of {request.project}/{request.env.value} at {address}",
                path=settings.pointer_file(request.project, request.env, role), address=address,
            )


def _env_files(settings: HostSettings, request: DeployRequest) -> tuple[tuple[str, ...], str]:
    """The env files a slot reads, in order (the master env last, so its protected variables
    win), and one digest of their contents: a change to either replaces the container."""
    paths = (settings.env_file(request.project, request.env), settings.master_env_file(request.project))
    present = [(path, host.get_fact(Sha256File, path=path)) for path in paths]
    present = [(path, digest) for path, digest in present if digest]
    if not present:
        return (), ""
    if len(present) == 1:
        return (present[0][0],), present[0][1][:16]
    combined = hashlib.sha256("".join(digest for _, digest in present).encode()).hexdigest()
    return tuple(path for path, _ in present), combined[:16]


def _healthy_container(pair: SlotPair, slot: Slot, containers: dict[str, Container], settings: HostSettings) -> bool:
    record = pair.record(slot)
    container = containers.get(names.container_name(pair.project, pair.env, slot))
    return (
        record.release is not None
        and container is not None
        and container.running
        and container.spec == plans.container_spec(record.release, settings.network)
    )


@deploy("codeb deploy")
def deploy_release(request: DeployRequest) -> str:
    """Put the release in the inactive slot, health-check it and point the preview domain at it."""
    settings, projects, pair, existed = _context(request)
    now = utcnow()
    image_id = images.local_image_id(request.image) if request.push else None
    plan = plans.plan_deploy(request, projects, pair, base_domain=settings.base_domain, now=now, image_id=image_id)
    preview_url = f"{'http' if settings.tls == 'off' else 'https'}://{plan.preview_domain}"
    containers = _containers(request)
    serving = plan.serving
    site = _site(settings, request, plan.entry)
    env_files, env_digest = _env_files(settings, request)
    records = planned_records(request.project, request.env, [*plan.entry.domains, plan.preview_domain])
    if (
        serving is not None
        and _healthy_container(pair, serving, containers, settings)
        and containers[names.container_name(request.project, request.env, serving)].env_digest == env_digest
    ):
        # The release already runs: at most the routing (domains, site, pointers, DNS) changes.
        if (
            all(r.current for r in records)
            and projects.get(request.project, request.env) == plan.entry
            and _pointers(settings, request) == plans.pointer_targets(pair, plan.entry)
            and _site_current(settings, request, site)
        ):
            host.noop(f"{request.project}/{request.env.value}: {request.image} is already {pair.record(serving).state.value} in {serving.value}")
            return preview_url
        run = _LockedRun(settings, request, f"route {request.project}")
        _routing_steps(run, settings, request, plan, pair, site, records)
        run.finish(f"updating the routes of {request.project}/{request.env.value} failed")
        return preview_url

    target = plan.target
    container = names.container_name(request.project, request.env, target)
    run = _LockedRun(settings, request, f"deploy {request.image}")
    run.step(podman.network, name=f"Network {settings.network}", network=settings.network)
    if image_id is not None and (host.get_fact(ImageId, image=request.image) or "").removeprefix("sha256:") != image_id:
        archive = images.save_to_archive(request.image)
        atexit.register(lambda: os.path.exists(archive) and os.unlink(archive))
        run.step(podman.image_copied, name=f"Copy {request.image} to the server", image=request.image, image_id=image_id, archive=archive)
    run.step(
        registry.project_entry, name=f"Register {request.project}/{request.env.value}",
        registry_dir=settings.registry_dir, tool=settings.state_tool, project=request.project, env=request.env,
        entry=plan.entry,
    )
    run.step(
        podman.slot_container, name=f"Run {container} ({request.image})",
        project=request.project, env=request.env.value, slot=target.value, image=request.image,
        host_port=plan.release.port, container_port=request.container_port, network=settings.network,
        spec=plans.container_spec(plan.release, settings.network),
        env_files=env_files, env_digest=env_digest,
        runner=_slot_runner(settings),
    )
    health = run.step(
        checks.http_health, name=f"Health check {container}",
        tool=settings.state_tool, url=f"http://127.0.0.1:{plan.release.port}{request.health_path}",
        container=container, interval=settings.health_interval, timeout=settings.health_timeout,
    )
    expect = plans.pair_digest(pair, existed=existed)
    run.step(
        registry.slot_pair, name=f"Record {target.value} as deployed",
        registry_dir=settings.registry_dir, tool=settings.state_tool, pair=plan.deployed, expect=expect,
    )
    _routing_steps(run, settings, request, plan, plan.deployed, site, records)
    registry.slot_pair(
        name=f"Record {target.value} as failed", registry_dir=settings.registry_dir, tool=settings.state_tool,
        pair=plan.failed, expect=expect, _ignore_errors=True,
        _if=lambda: health.is_complete() and health.did_error(),
    )
    run.finish(f"deploy of {request.image} to {request.project}/{request.env.value} {target.value} failed; "
               "the active slot and its traffic are unchanged")
    python.call(name="Preview URL", function=lambda: host.log(f"preview: {preview_url} -> {target.value} ({request.image})"))
    return preview_url


def _routing_steps(run: _LockedRun, settings: HostSettings, request: DeployRequest, plan: plans.DeployPlan,
                   pair: SlotPair, site: str, records: list) -> None:
    """Registry entry, upstream pointers, Caddy site and DNS records of a project/env."""
    run.step(
        registry.project_entry, name=f"Register {request.project}/{request.env.value}",
        registry_dir=settings.registry_dir, tool=settings.state_tool, project=request.project, env=request.env,
        entry=plan.entry,
    )
    _pointer_steps(run, settings, request, pair, plan.entry)
    # Records before the site: with ACME, Caddy orders a certificate as soon as it loads the site,
    # and the CA must then find the name pointing here.
    dns_settings = DnsSettings.from_data(host.data)
    for zone_records in records:
        run.step(
            powerdns.address_records, name=f"DNS {', '.join(zone_records.names)} -> app server",
            zone=zone_records.zone, names=list(zone_records.names), addresses=dns_settings.addresses(),
            owner=zone_records.owner, prune=True, api=dns_settings.api,
        )
    run.step(caddy.site, name=f"Caddy site {request.project}-{request.env.value}", path=settings.site_file(request.project, request.env),
             content=site, caddyfile=settings.caddyfile, caddy_bin=settings.caddy_bin)


def _slot_runner(settings: HostSettings) -> str:
    return settings.slot_units if settings.slot_units != "auto" else host.get_fact(SlotRunner)


def _site(settings: HostSettings, request, entry: ProjectEnv) -> str:
    return render_site(
        project=request.project, env=request.env, domains=entry.domains,
        preview_domains=[names.preview_domain(request.project, request.env, settings.base_domain)],
        tls=settings.tls,
        active_pointer=settings.pointer_file(request.project, request.env, "active"),
        preview_pointer=settings.pointer_file(request.project, request.env, "preview"),
    )


def _site_current(settings: HostSettings, request, site: str) -> bool:
    return host.get_fact(CaddySite, path=settings.site_file(request.project, request.env)) == site.rstrip("\n")


def _switch(request: SlotRequest, action: str, transition: Callable[[SlotPair, datetime, HostSettings], SlotPair | None]) -> None:
    settings, projects, pair, existed = _context(request)
    entry = projects.require(request.project, request.env)
    wanted = transition(pair, utcnow(), settings) or pair
    if not existed and wanted == pair:
        raise slots.CodebError(f"{request.project}/{request.env.value}: nothing deployed yet")
    active = wanted.active
    containers = _containers(request)
    if active is not None and not _healthy_container(wanted, active, containers, settings):
        raise pair.error(action, active, "its container is missing, stopped or runs something else than recorded; deploy again")
    if wanted == pair and _pointers(settings, request) == plans.pointer_targets(pair, entry):
        host.noop(f"{request.project}/{request.env.value}: {active.value if active else 'nothing'} already active")
        return
    run = _LockedRun(settings, request, action)
    _pointer_steps(run, settings, request, wanted, entry)
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


@deploy("codeb cleanup")
def cleanup(request: SlotRequest) -> None:
    """Remove the containers of slots whose grace period ended (any grace/failed slot with force)."""
    settings, projects, pair, existed = _context(request)
    projects.require(request.project, request.env)
    gone = slots.cleanable(pair, now=utcnow(), force=request.force)
    containers = _containers(request)
    leftovers = [s for s in gone if names.container_name(request.project, request.env, s) in containers]
    if not gone:
        host.noop(f"{request.project}/{request.env.value}: no slot to clean up")
        return
    run = _LockedRun(settings, request, "cleanup")
    for s in leftovers:
        run.step(podman.slot_removed, name=f"Remove {names.container_name(request.project, request.env, s)}", project=request.project, env=request.env.value, slot=s.value)
    run.step(
        registry.slot_pair, name="Record cleanup", registry_dir=settings.registry_dir, tool=settings.state_tool,
        pair=slots.cleaned(pair, gone), expect=plans.pair_digest(pair, existed=existed),
    )
    run.finish(f"cleanup of {request.project}/{request.env.value} failed")


@deploy("codeb remove")
def remove_project(request: SlotRequest) -> None:
    """Take a project/env off the app server: containers, Caddy site, upstream files, its DNS
    records and registry entries. A project that still serves its domain needs force."""
    settings, projects, pair, existed = _context(request)
    entry = projects.get(request.project, request.env)
    containers = _containers(request)
    pointers = [settings.pointer_file(request.project, request.env, role) for role in ("active", "preview")]
    zones = zones_with_records(request.project, request.env)
    site = host.get_fact(CaddySite, path=settings.site_file(request.project, request.env))
    if entry is None and not existed and not containers and not zones and site is None:
        host.noop(f"{request.project}/{request.env.value} is not on this server")
        return
    if pair.active is not None and not request.force:
        raise pair.error("remove", pair.active, "it serves the domain; pass force=true to take the project offline")
    run = _LockedRun(settings, request, "remove")
    for s in Slot:
        run.step(podman.slot_removed, name=f"Remove {names.container_name(request.project, request.env, s)}",
                 project=request.project, env=request.env.value, slot=s.value)
    run.step(caddy.site_removed, name=f"Remove Caddy site {request.project}-{request.env.value}",
             path=settings.site_file(request.project, request.env), caddyfile=settings.caddyfile, caddy_bin=settings.caddy_bin)
    run.step(caddy.upstreams_removed, name="Remove upstream files", paths=pointers)
    for zone, owner in zones:
        run.step(powerdns.owner_records_removed, name=f"Remove DNS records of {owner} in {zone}",
                 zone=zone, owner=owner, api=DnsSettings.from_data(host.data).api)
    run.step(registry.slot_pair_removed, name="Forget slots", registry_dir=settings.registry_dir,
             tool=settings.state_tool, project=request.project, env=request.env)
    run.step(registry.project_entry, name="Forget project", registry_dir=settings.registry_dir,
             tool=settings.state_tool, project=request.project, env=request.env, entry=None)
    run.finish(f"removal of {request.project}/{request.env.value} failed")


def status(request: SlotRequest) -> dict[str, Any]:
    """The slot state of one project/env as recorded, checked against podman and the pointers."""
    settings, projects, pair, _ = _context(request)
    entry = projects.require(request.project, request.env)
    containers = _containers(request)
    pointers = _pointers(settings, request)
    report: dict[str, Any] = {
        "project": request.project, "env": request.env.value,
        "active_slot": pair.active.value if pair.active else None,
        "domain": entry.domain,
        "aliases": list(entry.aliases),
        "dns_to_create": external_records(entry.domains),
        "preview_domain": names.preview_domain(request.project, request.env, settings.base_domain),
        "slots": {}, "grace_until": None,
        "serving": pointers,
    }
    for s in Slot:
        record = pair.record(s)
        container = containers.get(names.container_name(request.project, request.env, s))
        report["slots"][s.value] = {
            "state": record.state.value,
            "image": record.release.image if record.release else None,
            "port": entry.ports[s],
            "container": None if container is None else ("running" if container.running else "stopped"),
            "container_id": None if container is None else container.id,
            "matches_record": record.release is None or _healthy_container(pair, s, containers, settings),
            "deployed_at": record.deployed_at.isoformat() if record.deployed_at else None,
            "grace_until": record.grace_until.isoformat() if record.grace_until else None,
        }
        if record.grace_until and record.state is slots.SlotState.GRACE:
            report["grace_until"] = record.grace_until.isoformat()
    return report
