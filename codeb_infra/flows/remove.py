"""Remove: a project/env taken off the app server.

Read: `read_slots`, the site file and the zones holding its records. Decide:
`domain.decisions.plan_remove`. Apply: containers, site, pointers, records and registry entries
removed under the deploy lock, and any watch of its last promote ended, its metrics file too (a
rolled-back release's `ReleaseRolledBack` would fire on for a project that is gone).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from codeb_infra.config.app import DnsSettings, HostSettings
from codeb_infra.config.monitoring import watch_metrics
from codeb_infra.domain import decisions, names
from codeb_infra.domain import watch as watch_domain
from codeb_infra.domain.changes import Plan
from codeb_infra.domain.names import Slot
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.facts.files import CaddySite
from codeb_infra.flows.common import LockedRun, read_slots
from codeb_infra.flows.dns import zones_with_records
from codeb_infra.operations import caddy, podman, powerdns, registry, watch


def _decide(request: SlotRequest) -> tuple[HostSettings, Plan, list[tuple[str, str]], bool]:
    settings = HostSettings.from_data(host.data)
    live, tool_current = read_slots(settings, request)
    site_path = settings.site_file(request.project, request.env)
    zones = zones_with_records(request.project, request.env)
    plan = decisions.plan_remove(
        live, force=request.force, site=host.get_fact(CaddySite, path=site_path), site_path=site_path, dns_owners=zones
    )
    return settings, plan, zones, tool_current


def plan_remove(request: SlotRequest) -> Plan:
    """What a remove would change here (reads only)."""
    return _decide(request)[1]


@deploy("codeb remove")
def remove_project(request: SlotRequest) -> Plan:
    """Take a project/env off the app server: containers, Caddy site, upstream files, its DNS
    records and registry entries. A project that still serves its domain needs force."""
    settings, plan, zones, tool_current = _decide(request)
    if not plan.changed:
        host.noop(f"{request.project}/{request.env.value} is not on this server")
        return plan
    pointers = [settings.pointer_file(request.project, request.env, role) for role in ("active", "preview")]
    run = LockedRun(settings, request, "remove", tool_current=tool_current)
    for s in Slot:
        run.step(
            podman.slot_removed,
            name=f"Remove {names.container_name(request.project, request.env, s)}",
            project=request.project,
            env=request.env.value,
            slot=s.value,
        )
    run.step(
        caddy.site_removed,
        name=f"Remove Caddy site {request.project}-{request.env.value}",
        path=settings.site_file(request.project, request.env),
        caddyfile=settings.caddyfile,
        caddy_bin=settings.caddy_bin,
    )
    run.step(caddy.upstreams_removed, name="Remove upstream files", paths=pointers)
    run.step(
        watch.watch_ended,
        name=f"End any watch of {request.project}/{request.env.value}",
        unit=watch_domain.unit(request.project, request.env),
    )
    for path in (
        settings.watch_spec(request.project, request.env),
        settings.watch_record(request.project, request.env),
        watch_metrics(request.project, request.env.value),
    ):
        run.step(files.file, name=f"Remove {path}", path=path, present=False)
    for zone, owner in zones:
        run.step(
            powerdns.owner_records_removed,
            name=f"Remove DNS records of {owner} in {zone}",
            zone=zone,
            owner=owner,
            api=DnsSettings.from_data(host.data).api,
        )
    run.step(
        registry.slot_pair_removed,
        name="Forget slots",
        registry_dir=settings.registry_dir,
        tool=settings.state_tool,
        project=request.project,
        env=request.env,
    )
    run.step(
        registry.project_entry,
        name="Forget project",
        registry_dir=settings.registry_dir,
        tool=settings.state_tool,
        project=request.project,
        env=request.env,
        entry=None,
    )
    run.finish(f"removal of {request.project}/{request.env.value} failed")
    return plan
