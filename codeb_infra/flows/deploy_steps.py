"""A deploy whose routing is already right (a new release of a project whose site and DNS records
stand) as one server-side command: `codeb-state steps` takes the lock, registers, starts the slot,
health-checks it, records it, points the preview at it, records the release, appends the audit row
and unlocks, in one process on the app server.

The steps are the same command lines the deploy's operations run, built by the same builders;
what the operations learn from facts first was read once before (`flows.deploy._read`).
"""

from __future__ import annotations

from typing import Any

from pyinfra.api import StringCommand

from codeb_infra.commands import caddy as caddy_commands
from codeb_infra.commands import podman as podman_commands
from codeb_infra.commands import releases as release_commands
from codeb_infra.commands import state as state_commands
from codeb_infra.commands import systemd as systemd_commands
from codeb_infra.config.app import HostSettings
from codeb_infra.domain import names, plans
from codeb_infra.domain.decisions import DeployDecision
from codeb_infra.domain.live import LiveDeploy
from codeb_infra.domain.names import is_local_image
from codeb_infra.domain.registry import pair_record
from codeb_infra.domain.releases import ReleaseLog
from codeb_infra.domain.requests import DeployRequest
from codeb_infra.flows import releases
from codeb_infra.operations import podman

# Kinds of change (`domain.decisions.plan_deploy`) that need Caddy or PowerDNS: a deploy with one
# of them runs as operations (`flows.deploy`), which order records before the site for ACME.
ROUTING = ("DNS records", "Caddy site")


def fits(decision: DeployDecision) -> bool:
    """Whether the deploy is a new release behind routing that already stands."""
    return not decision.routing_only and not any(c.what in ROUTING for c in decision.plan.changes)


def _slot_start(
    settings: HostSettings,
    request: DeployRequest,
    live: LiveDeploy,
    decision: DeployDecision,
    env_files: tuple[str, ...],
    runner: str,
) -> list[StringCommand]:
    """The commands that replace the target slot's container with the new release."""
    plan = decision.deploy
    target = plan.target
    container = names.container_name(request.project, request.env, target)
    unit: dict[str, Any] = {
        "labels": podman.slot_labels(
            project=request.project,
            env=request.env.value,
            slot=target.value,
            spec=plans.container_spec(plan.release, settings.network),
            env_digest=live.env_digest,
        ),
        "image": request.image,
        "network": settings.network,
        "host_port": plan.release.port,
        "container_port": request.container_port,
        "env_files": env_files,
        "pull": podman.slot_pull(request.image),
    }
    if runner == "quadlet":
        service = f"{container}.service"
        return [
            state_commands.write(
                settings.state_tool,
                path=podman.unit_file(container),
                content=podman.slot_unit(container, **unit),
                mode="644",
            ),
            systemd_commands.daemon_reload(),
            systemd_commands.reset_failed(service),
            systemd_commands.restart(service),
        ]
    return [podman_commands.remove(container), podman_commands.run(container=container, **unit)]


def plan(
    settings: HostSettings,
    request: DeployRequest,
    live: LiveDeploy,
    decision: DeployDecision,
    *,
    env_files: tuple[str, ...],
    runner: str,
    log: ReleaseLog,
) -> state_commands.StepsPlan:
    """The deploy's steps, and what follows a failed start or health check: the slot recorded
    failed, and the failed release in the log."""
    deploy = decision.deploy
    target = deploy.target
    tool, releases_tool = settings.state_tool, releases.tool(settings)
    staging = releases.staging_path(settings, request)

    def put_slots(record: object) -> StringCommand:
        return state_commands.put_record(
            tool,
            kind="slots",
            registry=settings.registry_dir,
            project=request.project,
            env=request.env.value,
            expect=live.expect,
            record=pair_record(record).model_dump(mode="json"),  # type: ignore[arg-type]
        )

    def record(result: str) -> list[StringCommand]:
        meta = releases.release_meta(settings, request, target, result)  # type: ignore[arg-type]
        return [
            state_commands.write(tool, path=staging, content=meta, mode="600", dir_mode="700"),
            release_commands.record(releases_tool, meta=staging),
        ]

    steps: list[StringCommand] = [podman_commands.network_ensured(settings.network)]
    registered: tuple[tuple[str, str, str], ...] = ()
    if live.entry != deploy.entry:
        registered = (("ssot.json", "projects", plans.record_digest(live.entry)),)
        steps.append(
            state_commands.put_record(
                tool,
                kind="project",
                registry=settings.registry_dir,
                project=request.project,
                env=request.env.value,
                expect=plans.record_digest(live.entry),
                record=deploy.entry.model_dump(mode="json"),
            )
        )
    if request.migrate:
        steps.append(
            release_commands.step_run(
                image=request.image,
                env_files=list(env_files),
                network=settings.network,
                step=request.migrate,
                pull="never" if is_local_image(request.image) else "missing",
            )
        )
    started = len(steps)
    steps += _slot_start(settings, request, live, decision, env_files, runner)
    container = names.container_name(request.project, request.env, target)
    steps.append(
        state_commands.health(
            tool,
            url=f"http://127.0.0.1:{deploy.release.port}{request.health_path}",
            interval=settings.health_interval,
            timeout=settings.health_timeout,
            container=container,
        )
    )
    # A failure of the start or the health check is the release's: the slot is recorded failed.
    released = range(started, len(steps))
    steps.append(put_slots(deploy.deployed))
    for role, address in plans.pointer_targets(deploy.deployed, deploy.entry).items():
        if address is not None and live.pointers.get(role) != address:
            steps.append(
                caddy_commands.write_pointer(settings.pointer_file(request.project, request.env, role), address)
            )
    steps += record("passed")
    prune = releases.pruned(settings, log)
    if prune:
        steps.append(
            release_commands.prune(releases_tool, project=request.project, env=request.env.value, numbers=prune)
        )
    on_failure = [put_slots(deploy.failed), *record("failed")]
    return state_commands.StepsPlan(
        steps=tuple(steps),
        on_failure=tuple((released, command) for command in on_failure),
        registry=settings.registry_dir,
        expect=(("slots.json", "slots", live.expect), *registered),
        failure=(
            f"deploy of {request.image} to {request.project}/{request.env.value} {target.value} failed; "
            "the active slot and its traffic are unchanged"
        ),
    )
