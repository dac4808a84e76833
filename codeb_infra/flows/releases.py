"""Releases: the record each deploy leaves, redeploying a kept release (or the current image with
a new env), and listing them.

``record_release`` is called by the deploy flow where its health check has run. ``redeploy`` and
``redeploy_current`` are deploys (then ``flows.promote`` in a second run, which the controller's
``rollback_to_release`` does); ``listing`` and ``slot_releases`` only read.
"""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import File, Sha256File

from codeb_infra.commands.state import SwitchCancel
from codeb_infra.config.app import HostSettings
from codeb_infra.domain import names
from codeb_infra.domain import releases as domain
from codeb_infra.domain.env import EnvStore
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.live import LiveContainer
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.releases import ReleaseLog
from codeb_infra.domain.requests import DeployRequest
from codeb_infra.domain.slots import SlotPair, SlotState
from codeb_infra.facts.env import EnvStoreIndex
from codeb_infra.facts.registry import SlotRegistry
from codeb_infra.facts.releases import Releases
from codeb_infra.flows.common import LockedRun, utcnow
from codeb_infra.flows.env import actor
from codeb_infra.operations import releases as ops


class ReleaseRequest(BaseModel):
    """Deploy release ``release`` of a project/env again (``release=None``: the active one's image)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    env: Environment = Environment.PRODUCTION
    release: int | None = None
    lock_wait: float = 0.0
    break_lock: bool = False

    @classmethod
    def of(cls, project: str, env: str = "production", release: object = None, **more: Any) -> ReleaseRequest:
        number = None if release is None else domain.release_number(release)
        return cls(project=names.project_name(project), env=names.environment(env), release=number, **more)


def tool(settings: HostSettings) -> str:
    return posixpath.join(settings.codeb_dir, "bin", "codeb-releases")


def log_path(settings: HostSettings, project: str, env: Environment) -> str:
    return posixpath.join(settings.codeb_dir, "releases", project, f"{env.value}.json")


def read_log(settings: HostSettings, project: str, env: Environment) -> ReleaseLog:
    return host.get_fact(Releases, path=log_path(settings, project, env))


def env_version_in_use(settings: HostSettings, request: DeployRequest) -> int | None:
    """The env version a new slot reads: the pinned one, else the current version when the live
    file still holds it (None when it was written by hand or there is none)."""
    if request.env_version is not None:
        return request.env_version
    store = EnvStore(settings.codeb_dir, request.project, request.env.value)
    current = host.get_fact(EnvStoreIndex, path=store.index).current
    if current is None or host.get_fact(Sha256File, path=store.live) != current.digest:
        return None
    return current.version


def env_changed(pair: SlotPair, containers: dict[str, LiveContainer], env_digest: str) -> bool:
    """Whether the active slot's container reads other env than a new slot would."""
    active = pair.active
    container = containers.get(names.container_name(pair.project, pair.env, active)) if active else None
    return container is not None and container.env_digest != env_digest


def release_meta(
    settings: HostSettings, request: DeployRequest, slot: Slot, result: Literal["passed", "failed"]
) -> str:
    """The record a deploy hands the server's release store, healthy or failed."""
    return domain.record_meta(
        project=request.project,
        env=request.env,
        image=request.image,
        slot=slot,
        env_version=env_version_in_use(settings, request),
        actor=actor(),
        time=utcnow(),
        health=result,
        container_port=request.container_port,
        health_path=request.health_path,
        migrate=request.migrate,
        contract=request.contract,
    )


def staging_path(settings: HostSettings, request: DeployRequest) -> str:
    """Where a release's record waits (root only) for `codeb-releases record`."""
    return posixpath.join(settings.codeb_dir, "releases", ".staged", f"{request.project}.{request.env.value}.json")


def pruned(settings: HostSettings, log: ReleaseLog) -> list[int]:
    """The releases whose images a deploy's new release pushes beyond ``keep_releases``."""
    keep = domain.keep_releases(host.data.get("keep_releases"))
    return [r.number for r in domain.to_prune(log, keep - 1)]


def record_release(
    run: LockedRun, settings: HostSettings, request: DeployRequest, slot: Slot, checked: tuple[OperationMeta, ...]
) -> None:
    """At the end of a deploy: its release in the log (healthy, or failed when a step of ``checked``,
    the container's start or its health check, failed), and the images of releases beyond
    ``keep_releases`` pruned."""
    log = read_log(settings, request.project, request.env)
    keep = domain.keep_releases(host.data.get("keep_releases"))
    staging = staging_path(settings, request)

    def meta(result: Literal["passed", "failed"]) -> str:
        return release_meta(settings, request, slot, result)

    run.step(ops.releases_tool, name="Install codeb-releases", path=tool(settings))
    run.step(
        ops.release_recorded,
        name=f"Record the release of {request.image}",
        tool=tool(settings),
        staging=staging,
        meta=meta("passed"),
    )
    run.step(
        ops.images_pruned,
        name=f"Keep the images of the last {keep} releases",
        tool=tool(settings),
        project=request.project,
        env=request.env.value,
        numbers=pruned(settings, log),
    )

    def failed() -> bool:
        return failed_step(checked)

    ops.releases_tool(
        name="Install codeb-releases (failed release)", path=tool(settings), _if=failed, _ignore_errors=True
    )
    ops.release_recorded(
        name=f"Record the failed release of {request.image}",
        tool=tool(settings),
        staging=staging,
        meta=meta("failed"),
        _if=failed,
        _ignore_errors=True,
    )


def failed_step(steps: tuple[OperationMeta, ...]) -> bool:
    """Whether one of ``steps`` ran and failed (a step skipped after an earlier failure did not)."""
    return any(step.is_complete() and step.did_error() for step in steps)


def migrate_step(run: LockedRun, settings: HostSettings, request: DeployRequest, env_files: tuple[str, ...]) -> None:
    """Before the new slot starts: the release's migrate step, once, with the slot's env files."""
    if request.migrate:
        run.step(
            ops.release_step,
            name=f"Migrate: {request.migrate}",
            image=request.image,
            env_files=list(env_files),
            network=settings.network,
            step=request.migrate,
        )


def contract_work(
    settings: HostSettings, request: Any, pair: SlotPair, gone: list[Slot]
) -> tuple[list[domain.ReleaseRecord], list[domain.ReleaseRecord]]:
    """A cleanup's contract work, read and decided: the active release's pending step once no slot
    is left in its grace period (after removing ``gone``), and pending steps of releases rolled back
    within grace (to cancel)."""
    log = read_log(settings, request.project, request.env)
    return domain.contract_decisions(
        log, active=pair.active, deployed=_preview(pair), grace_over=pair.in_grace is None or pair.in_grace in gone
    )


def _preview(pair: SlotPair) -> Slot | None:
    return next((s for s in Slot if pair.record(s).state is SlotState.DEPLOYED), None)


def _contract_state(settings: HostSettings, request: Any, release: domain.ReleaseRecord, state: str) -> dict[str, Any]:
    """The arguments of `ops.contract_state` recording what became of ``release``'s contract step."""
    return {
        "tool": tool(settings),
        "project": request.project,
        "env": request.env.value,
        "number": release.number,
        "state": state,
    }


def rolled_back_contracts(settings: HostSettings, log: ReleaseLog, pair: SlotPair) -> SwitchCancel:
    """After a rollback to ``pair``: the pending contract steps of releases that neither serve nor
    wait in preview any more, which the switch itself records cancelled (they never run)."""
    _, cancelled = domain.contract_decisions(log, active=pair.active, deployed=_preview(pair), grace_over=False)
    return SwitchCancel(tool=tool(settings), numbers=tuple(r.number for r in cancelled))


def contract_steps(
    run: LockedRun,
    settings: HostSettings,
    request: Any,
    due: list[domain.ReleaseRecord],
    cancelled: list[domain.ReleaseRecord],
) -> None:
    """Run the due contract steps (then recorded done, so each runs once); record the cancelled."""
    for release in cancelled:
        run.step(
            ops.contract_state,
            name=f"Cancel release {release.number}'s contract step",
            **_contract_state(settings, request, release, "cancelled"),
        )
    store = EnvStore(settings.codeb_dir, request.project, request.env.value)
    for release in due:
        env_file = store.version_file(release.env_version) if release.env_version else store.live
        files = [path for path in (env_file, store.master) if host.get_fact(File, path=path)]
        run.step(
            ops.release_step,
            name=f"Contract of release {release.number}: {release.contract}",
            image=release.tag,
            env_files=files,
            network=settings.network,
            step=release.contract,
        )
        run.step(
            ops.contract_state,
            name=f"Record release {release.number}'s contract step done",
            **_contract_state(settings, request, release, "done"),
        )


def _deploy_request(
    request: ReleaseRequest, release: domain.ReleaseRecord, image: str, env_version: int | None
) -> DeployRequest:
    return DeployRequest(
        project=request.project,
        env=request.env,
        image=image,
        container_port=release.container_port,
        health_path=release.health_path,
        env_version=env_version,
        lock_wait=request.lock_wait,
        break_lock=request.break_lock,
    )


@deploy("codeb redeploy release")
def redeploy(request: ReleaseRequest) -> None:
    """Release N's image ID with release N's env version into the inactive slot (health check, preview)."""
    from codeb_infra.flows.deploy import deploy_release

    settings = HostSettings.from_data(host.data)
    log = read_log(settings, request.project, request.env)
    assert request.release is not None
    release = domain.redeployable(log, request.release)
    pair = host.get_fact(SlotRegistry, registry_dir=settings.registry_dir).pair(request.project, request.env)
    for slot, state in ((pair.active, "active"), (pair.in_grace, "in its grace period")):
        if slot is None:
            continue
        running = log.of_slot(slot)
        if running is not None and (running.image_id, running.env_version) == (release.image_id, release.env_version):
            if state == "active":
                host.noop(
                    f"{request.project}/{request.env.value}: release {release.number}'s image and env already serve "
                    f"(release {running.number}, {slot.value})"
                )
                return
            raise CodebError(
                f"release {release.number} is still in its grace period in {slot.value}: "
                f"`codeb rollback {request.project}` switches back to it instantly"
            )
    assert release.tag is not None
    # By keyword: pyinfra's typed deploy signature would bind a positional argument to `_sudo`.
    deploy_release(request=_deploy_request(request, release, release.tag, release.env_version))


@deploy("codeb redeploy")
def redeploy_current(request: ReleaseRequest) -> None:
    """The active release's image again, with the current env, into the inactive slot (what
    `env set --deploy` does). Deployed by its release tag, so it goes beside the live slot and
    never replaces it."""
    from codeb_infra.flows.deploy import deploy_release

    settings = HostSettings.from_data(host.data)
    pair = host.get_fact(SlotRegistry, registry_dir=settings.registry_dir).pair(request.project, request.env)
    running = read_log(settings, request.project, request.env).of_slot(pair.active) if pair.active else None
    if running is None or running.tag is None or running.pruned:
        raise CodebError(f"{request.project}/{request.env.value}: no active release to redeploy; deploy with --image")
    deploy_release(request=_deploy_request(request, running, running.tag, None))


def listing(project: str, env: Environment) -> list[dict[str, Any]]:
    settings = HostSettings.from_data(host.data)
    return [r.model_dump(mode="json") for r in read_log(settings, project, env).releases]


def slot_releases(project: str, env: Environment) -> dict[str, int | None]:
    """Which release each slot runs (for `codeb status`)."""
    settings = HostSettings.from_data(host.data)
    log = read_log(settings, project, env)
    return {slot.value: (r.number if (r := log.of_slot(slot)) else None) for slot in Slot}
