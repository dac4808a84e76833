"""What the lifecycle flows share: reading one project/env's live state, and running the
operations of one change under its deploy lock."""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import Sha256File

from codeb_infra.domain import names, plans
from codeb_infra.domain.names import Slot
from codeb_infra.domain.registry import ProjectEnv
from codeb_infra.domain.requests import DeployRequest, SlotRequest
from codeb_infra.domain.slots import SlotPair
from codeb_infra.facts.files import CaddySite, UpstreamPointer
from codeb_infra.facts.podman import CodebContainers, Container, SlotRunner
from codeb_infra.facts.registry import ProjectRegistry, SlotRegistry
from codeb_infra.operations import api, caddy, checks, powerdns, registry
from codeb_infra.config.app import DnsSettings, HostSettings
from codeb_infra.templates.caddy import render_site


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def is_app_host() -> bool:
    """Slots live on the app server; `@local` stands in for it."""
    return "app" in host.groups or host.name.startswith("@local")


def all_succeeded(steps: list[OperationMeta]) -> bool:
    return all(step.did_succeed() for step in steps)


class LockedRun:
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
        return all_succeeded(self.steps)

    def step(self, op: Callable[..., OperationMeta], **kwargs: Any) -> OperationMeta:
        kwargs.setdefault("_ignore_errors", True)
        before = list(self.steps)
        meta = op(_if=lambda: all_succeeded(before), **kwargs)
        self.steps.append(meta)
        return meta

    def finish(self, failure_message: str) -> None:
        ok = self.ok
        api.record_change(request=self.request, holder=self.holder, ok=ok)
        checks.unlock(
            name=f"Unlock {self.request.project}/{self.request.env.value}",
            tool=self.settings.state_tool, locks_dir=self.settings.locks_dir, project=self.request.project,
            env=self.request.env.value, holder=self.holder,
        )
        checks.failure(name="Report failure", message=failure_message, _if=lambda: not ok())


def read_context(request: DeployRequest | SlotRequest) -> tuple[HostSettings, Any, SlotPair, bool]:
    settings = HostSettings.from_data(host.data)
    projects = host.get_fact(ProjectRegistry, registry_dir=settings.registry_dir)
    table = host.get_fact(SlotRegistry, registry_dir=settings.registry_dir)
    return settings, projects, table.pair(request.project, request.env), table.has(request.project, request.env)


def slot_containers(request: DeployRequest | SlotRequest) -> dict[str, Container]:
    found = host.get_fact(CodebContainers, project=request.project, env=request.env.value)
    return {c.name: c for c in found}


def pointers(settings: HostSettings, request: DeployRequest | SlotRequest) -> dict[str, str | None]:
    return {
        role: host.get_fact(UpstreamPointer, path=settings.pointer_file(request.project, request.env, role))
        for role in ("active", "preview")
    }


def pointer_steps(run: LockedRun, settings: HostSettings, request, pair: SlotPair, entry: ProjectEnv) -> None:
    # The domain's pointer first: the switch is the one rename that matters.
    for role, address in plans.pointer_targets(pair, entry).items():
        if address is not None:
            run.step(
                caddy.upstream, name=f"Point {role} upstream of {request.project}/{request.env.value} at {address}",
                path=settings.pointer_file(request.project, request.env, role), address=address,
            )


def env_files(settings: HostSettings, request: DeployRequest) -> tuple[tuple[str, ...], str]:
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


def healthy_container(pair: SlotPair, slot: Slot, containers: dict[str, Container], settings: HostSettings) -> bool:
    record = pair.record(slot)
    container = containers.get(names.container_name(pair.project, pair.env, slot))
    return (
        record.release is not None
        and container is not None
        and container.running
        and container.spec == plans.container_spec(record.release, settings.network)
    )



def routing_steps(run: LockedRun, settings: HostSettings, request: DeployRequest, plan: plans.DeployPlan,
                   pair: SlotPair, site: str, records: list) -> None:
    """Registry entry, upstream pointers, Caddy site and DNS records of a project/env."""
    run.step(
        registry.project_entry, name=f"Register {request.project}/{request.env.value}",
        registry_dir=settings.registry_dir, tool=settings.state_tool, project=request.project, env=request.env,
        entry=plan.entry,
    )
    pointer_steps(run, settings, request, pair, plan.entry)
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


def slot_runner(settings: HostSettings) -> str:
    return settings.slot_units if settings.slot_units != "auto" else host.get_fact(SlotRunner)


def project_site(settings: HostSettings, request, entry: ProjectEnv) -> str:
    return render_site(
        project=request.project, env=request.env, domains=entry.domains,
        preview_domains=[names.preview_domain(request.project, request.env, settings.base_domain)],
        tls=settings.tls,
        active_pointer=settings.pointer_file(request.project, request.env, "active"),
        preview_pointer=settings.pointer_file(request.project, request.env, "preview"),
    )


def site_current(settings: HostSettings, request, site: str) -> bool:
    return host.get_fact(CaddySite, path=settings.site_file(request.project, request.env)) == site.rstrip("\n")
