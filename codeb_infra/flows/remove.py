"""Remove: a project/env taken off the app server."""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import deploy

from codeb_infra.domain import names
from codeb_infra.domain.names import Slot
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.facts.files import CaddySite
from codeb_infra.operations import caddy, podman, powerdns, registry
from codeb_infra.flows.dns import (
    zones_with_records,
)
from codeb_infra.config.app import DnsSettings
from codeb_infra.flows.common import LockedRun, read_context, slot_containers


@deploy("codeb remove")
def remove_project(request: SlotRequest) -> None:
    """Take a project/env off the app server: containers, Caddy site, upstream files, its DNS
    records and registry entries. A project that still serves its domain needs force."""
    settings, projects, pair, existed = read_context(request)
    entry = projects.get(request.project, request.env)
    containers = slot_containers(request)
    pointers = [settings.pointer_file(request.project, request.env, role) for role in ("active", "preview")]
    zones = zones_with_records(request.project, request.env)
    site = host.get_fact(CaddySite, path=settings.site_file(request.project, request.env))
    if entry is None and not existed and not containers and not zones and site is None:
        host.noop(f"{request.project}/{request.env.value} is not on this server")
        return
    if pair.active is not None and not request.force:
        raise pair.error("remove", pair.active, "it serves the domain; pass force=true to take the project offline")
    run = LockedRun(settings, request, "remove")
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
