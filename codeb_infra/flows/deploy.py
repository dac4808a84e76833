"""Deploy: a release into the inactive slot, health-checked, with the preview domain pointed at it."""

from __future__ import annotations

import atexit
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import python

from codeb_infra.controller import images
from codeb_infra.domain import names, plans
from codeb_infra.domain.requests import DeployRequest
from codeb_infra.facts.podman import ImageId
from codeb_infra.operations import checks, podman, registry
from codeb_infra.flows.dns import (
    planned_records,
)
from codeb_infra.flows.releases import env_changed, migrate_step, record_release
from codeb_infra.flows.common import LockedRun, env_files, healthy_container, pointers, project_site, read_context, routing_steps, site_current, slot_containers, slot_runner, utcnow


@deploy("codeb deploy")
def deploy_release(request: DeployRequest) -> str:
    """Put the release in the inactive slot, health-check it and point the preview domain at it."""
    settings, projects, pair, existed = read_context(request)
    now = utcnow()
    image_id = images.local_image_id(request.image) if request.push else None
    containers = slot_containers(request)
    slot_env_files, env_digest = env_files(settings, request)
    plan = plans.plan_deploy(request, projects, pair, base_domain=settings.base_domain, now=now, image_id=image_id,
                             env_changed=env_changed(pair, containers, env_digest))
    preview_url = f"{'http' if settings.tls == 'off' else 'https'}://{plan.preview_domain}"
    serving = plan.serving
    site = project_site(settings, request, plan.entry)
    records = planned_records(request.project, request.env, [*plan.entry.domains, plan.preview_domain])
    if (
        serving is not None
        and healthy_container(pair, serving, containers, settings)
        and containers[names.container_name(request.project, request.env, serving)].env_digest == env_digest
    ):
        # The release already runs: at most the routing (domains, site, pointers, DNS) changes.
        if (
            all(r.current for r in records)
            and projects.get(request.project, request.env) == plan.entry
            and pointers(settings, request) == plans.pointer_targets(pair, plan.entry)
            and site_current(settings, request, site)
        ):
            host.noop(f"{request.project}/{request.env.value}: {request.image} is already {pair.record(serving).state.value} in {serving.value}")
            return preview_url
        run = LockedRun(settings, request, f"route {request.project}")
        routing_steps(run, settings, request, plan, pair, site, records)
        run.finish(f"updating the routes of {request.project}/{request.env.value} failed")
        return preview_url

    target = plan.target
    container = names.container_name(request.project, request.env, target)
    run = LockedRun(settings, request, f"deploy {request.image}")
    run.step(podman.network, name=f"Network {settings.network}", network=settings.network)
    if image_id is not None and (host.get_fact(ImageId, image=request.image) or "").removeprefix("sha256:") != image_id:
        archive = images.save_to_archive(request.image)
        atexit.register(lambda: Path(archive).unlink(missing_ok=True))
        run.step(podman.image_copied, name=f"Copy {request.image} to the server", image=request.image, image_id=image_id, archive=archive)
    run.step(
        registry.project_entry, name=f"Register {request.project}/{request.env.value}",
        registry_dir=settings.registry_dir, tool=settings.state_tool, project=request.project, env=request.env,
        entry=plan.entry,
    )
    migrate_step(run, settings, request, slot_env_files)
    run.step(
        podman.slot_container, name=f"Run {container} ({request.image})",
        project=request.project, env=request.env.value, slot=target.value, image=request.image,
        host_port=plan.release.port, container_port=request.container_port, network=settings.network,
        spec=plans.container_spec(plan.release, settings.network),
        env_files=slot_env_files, env_digest=env_digest,
        runner=slot_runner(settings),
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
    routing_steps(run, settings, request, plan, plan.deployed, site, records)
    record_release(run, settings, request, target, health)
    registry.slot_pair(
        name=f"Record {target.value} as failed", registry_dir=settings.registry_dir, tool=settings.state_tool,
        pair=plan.failed, expect=expect, _ignore_errors=True,
        _if=lambda: health.is_complete() and health.did_error(),
    )
    run.finish(f"deploy of {request.image} to {request.project}/{request.env.value} {target.value} failed; "
               "the active slot and its traffic are unchanged")
    python.call(name="Preview URL", function=lambda: host.log(f"preview: {preview_url} -> {target.value} ({request.image})"))
    return preview_url
