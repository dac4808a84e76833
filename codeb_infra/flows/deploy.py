"""Deploy: a release into the inactive slot, health-checked, with the preview domain pointed at it.

Read: `read_slots` plus every project, the site file, the env files and (with push) the server's
image. Decide: `domain.plans.plan_deploy` (slot, ports, domains), then the DNS it wants, then
`domain.decisions.plan_deploy` (the changes). Apply: a new release behind routing that stands is
one `codeb-state steps` on the server (`flows.deploy_steps`); a deploy that changes routing runs
one operation per step under the deploy lock.
"""

from __future__ import annotations

import atexit
import os
import posixpath
from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import python

from codeb_infra.config.app import HostSettings
from codeb_infra.controller import images
from codeb_infra.domain import decisions, mesh_health, names, plans
from codeb_infra.domain.changes import Plan
from codeb_infra.domain.decisions import DeployDecision
from codeb_infra.domain.errors import RunFailed
from codeb_infra.domain.live import LiveDeploy
from codeb_infra.domain.requests import DeployRequest
from codeb_infra.facts.files import CaddySite
from codeb_infra.facts.health import DataReach
from codeb_infra.facts.podman import ImageId
from codeb_infra.facts.registry import ProjectRegistry
from codeb_infra.flows import deploy_steps, releases
from codeb_infra.flows.common import (
    LockedRun,
    env_files,
    holder,
    project_site,
    read_slots,
    routing_steps,
    slot_runner,
    utcnow,
)
from codeb_infra.flows.dns import ZoneRecords, planned_records
from codeb_infra.flows.releases import env_changed, failed_step, migrate_step, record_release
from codeb_infra.operations import api, checks, podman, registry
from codeb_infra.operations import releases as release_ops


@dataclass(frozen=True)
class _Decided:
    settings: HostSettings
    live: LiveDeploy
    decision: DeployDecision
    site: str
    records: list[ZoneRecords]
    env_files: tuple[str, ...]
    image_id: str | None
    tool_current: bool


def _read(settings: HostSettings, request: DeployRequest) -> tuple[LiveDeploy, tuple[str, ...], bool]:
    slots_live, tool_current = read_slots(settings, request)
    slot_env_files, env_digest = env_files(settings, request)
    site_path = settings.site_file(request.project, request.env)
    live = LiveDeploy(
        **dict(slots_live),
        projects=host.get_fact(ProjectRegistry, registry_dir=settings.registry_dir),
        site=host.get_fact(CaddySite, path=site_path),
        site_path=site_path,
        env_digest=env_digest,
        remote_image_id=host.get_fact(ImageId, image=request.image) if request.push else None,
    )
    return live, slot_env_files, tool_current


def _decide(request: DeployRequest) -> _Decided:
    settings = HostSettings.from_data(host.data)
    live, slot_env_files, tool_current = _read(settings, request)
    image_id = images.local_image_id(request.image) if request.push else None
    deploy_plan = plans.plan_deploy(
        request,
        live.projects,
        live.pair,
        base_domain=settings.base_domain,
        now=utcnow(),
        image_id=image_id,
        env_changed=env_changed(live.pair, live.containers, live.env_digest),
    )
    site = project_site(settings, request, deploy_plan.entry)
    records = planned_records(request.project, request.env, [*deploy_plan.entry.domains, deploy_plan.preview_domain])
    decision = decisions.plan_deploy(
        live,
        deploy_plan,
        site=site,
        image=request.image,
        image_id=image_id,
        records=[decisions.ZoneNames(zone=r.zone, names=r.names, owner=r.owner, current=r.current) for r in records],
    )
    return _Decided(settings, live, decision, site, records, slot_env_files, image_id, tool_current)


def plan_deploy(request: DeployRequest) -> Plan:
    """What a deploy would change here (reads only; a --push image is not copied)."""
    return _decide(request).decision.plan


def _lock_left(settings: HostSettings, request: DeployRequest) -> bool:
    lock = posixpath.join(settings.locks_dir, f"{request.project}.{request.env.value}.lock")
    return bool(host.get_fact(File, path=lock))


def _require_data_reachable(request: DeployRequest, env_files: tuple[str, ...]) -> None:
    """A release whose database or Redis does not answer from the app server (the mesh to storage
    down, say) would fail its health check or, worse, pass it and fail its users: refuse first."""
    if not env_files:
        return
    reach: dict[str, Any] = host.get_fact(DataReach, env_files=list(env_files))
    unreachable = mesh_health.unreachable_data(reach)
    if unreachable:
        raise RunFailed(
            f"{request.project}/{request.env.value}: {'; '.join(unreachable)} from {host.name}; nothing was deployed"
            " (`codeb health` says what is down)"
        )


def _remove_if_present(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)


@deploy("codeb deploy")
def deploy_release(request: DeployRequest) -> str:
    """Put the release in the inactive slot, health-check it and point the preview domain at it."""
    decided = _decide(request)
    settings, live, decision = decided.settings, decided.live, decided.decision
    plan = decision.deploy
    preview_url = f"{'http' if settings.tls == 'off' else 'https'}://{plan.preview_domain}"
    if decision.routing_only:
        if not decision.plan.changed and not _lock_left(settings, request):
            host.noop(f"{request.project}/{request.env.value}: {decision.plan.note}")
            return preview_url
        # A lock left by a run that got this far and died: take it like any run (it names its
        # holder; --break-lock or --lock-wait decide), so "no change" is never said over a held lock.
        run = LockedRun(settings, request, f"route {request.project}", tool_current=decided.tool_current)
        routing_steps(run, settings, request, plan, live.pair, decided.site, decided.records)
        run.finish(f"updating the routes of {request.project}/{request.env.value} failed")
        return preview_url

    _require_data_reachable(request, decided.env_files)
    if deploy_steps.fits(decision):
        _in_one_step(decided, request)
    else:
        _as_operations(decided, request)
    python.call(
        name="Preview URL",
        function=lambda: host.log(f"preview: {preview_url} -> {plan.target.value} ({request.image})"),
    )
    return preview_url


def _copy_image(run: LockedRun | None, request: DeployRequest, image_id: str) -> None:
    archive = images.save_to_archive(request.image)
    atexit.register(_remove_if_present, archive)
    copy = run.step if run is not None else lambda op, **kwargs: op(**kwargs)
    copy(
        podman.image_copied,
        name=f"Copy {request.image} to the server",
        image=request.image,
        image_id=image_id,
        archive=archive,
    )


def _in_one_step(decided: _Decided, request: DeployRequest) -> None:
    """A new release behind routing that stands: the tools current, the image on the server, then
    one `codeb-state steps` (`flows.deploy_steps`)."""
    settings, live, decision = decided.settings, decided.live, decided.decision
    if not decided.tool_current:
        registry.state_tool(name="Install codeb-state", path=settings.state_tool)
    release_ops.releases_tool(name="Install codeb-releases", path=releases.tool(settings))
    if decision.copy_image and decided.image_id is not None:
        _copy_image(None, request, decided.image_id)
    plan = deploy_steps.plan(
        settings,
        request,
        live,
        decision,
        env_files=decided.env_files,
        runner=slot_runner(settings),
        log=releases.read_log(settings, request.project, request.env),
    )
    who = holder(f"deploy {request.image}")
    checks.locked_steps(
        name=f"Deploy {request.image} to {request.project}/{request.env.value} {decision.deploy.target.value}",
        tool=settings.state_tool,
        locks_dir=settings.locks_dir,
        project=request.project,
        env=request.env.value,
        holder=who,
        plan=plan,
        wait=request.lock_wait,
        break_lock=request.break_lock,
        audit=api.steps_audit(request=request, holder=who),
    )


def _as_operations(decided: _Decided, request: DeployRequest) -> None:
    """A deploy that also changes routing (a new project, domain or alias): one operation per step
    under the lock, DNS records before the Caddy site."""
    settings, live, decision = decided.settings, decided.live, decided.decision
    plan = decision.deploy
    target = plan.target
    container = names.container_name(request.project, request.env, target)
    run = LockedRun(settings, request, f"deploy {request.image}", tool_current=decided.tool_current)
    run.step(podman.network, name=f"Network {settings.network}", network=settings.network)
    if decision.copy_image and decided.image_id is not None:
        _copy_image(run, request, decided.image_id)
    run.step(
        registry.project_entry,
        name=f"Register {request.project}/{request.env.value}",
        registry_dir=settings.registry_dir,
        tool=settings.state_tool,
        project=request.project,
        env=request.env,
        entry=plan.entry,
    )
    migrate_step(run, settings, request, decided.env_files)
    started = run.step(
        podman.slot_container,
        name=f"Run {container} ({request.image})",
        project=request.project,
        env=request.env.value,
        slot=target.value,
        image=request.image,
        host_port=plan.release.port,
        container_port=request.container_port,
        network=settings.network,
        spec=plans.container_spec(plan.release, settings.network),
        env_files=decided.env_files,
        env_digest=live.env_digest,
        runner=slot_runner(settings),
    )
    health = run.step(
        checks.http_health,
        name=f"Health check {container}",
        tool=settings.state_tool,
        url=f"http://127.0.0.1:{plan.release.port}{request.health_path}",
        container=container,
        interval=settings.health_interval,
        timeout=settings.health_timeout,
    )
    run.step(
        registry.slot_pair,
        name=f"Record {target.value} as deployed",
        registry_dir=settings.registry_dir,
        tool=settings.state_tool,
        pair=plan.deployed,
        expect=live.expect,
    )
    routing_steps(run, settings, request, plan, plan.deployed, decided.site, decided.records)
    checked = (started, health)
    record_release(run, settings, request, target, checked)
    registry.slot_pair(
        name=f"Record {target.value} as failed",
        registry_dir=settings.registry_dir,
        tool=settings.state_tool,
        pair=plan.failed,
        expect=live.expect,
        _ignore_errors=True,
        _if=lambda: failed_step(checked),
    )
    run.finish(
        f"deploy of {request.image} to {request.project}/{request.env.value} {target.value} failed; "
        "the active slot and its traffic are unchanged"
    )
