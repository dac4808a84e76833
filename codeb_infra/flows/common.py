"""What the lifecycle flows share: reading one project/env's live state into one value, and
running the operations of one change under its deploy lock."""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files

from codeb_infra.config.app import DnsSettings, HostSettings
from codeb_infra.domain import names, plans
from codeb_infra.domain.env import EnvStore
from codeb_infra.domain.live import LiveContainer, LiveSlots
from codeb_infra.domain.registry import ProjectEnv, SlotPairRecord
from codeb_infra.domain.releases import ReleaseLog
from codeb_infra.domain.requests import DeployRequest, SlotRequest
from codeb_infra.domain.slots import SlotPair
from codeb_infra.facts.files import UpstreamPointer
from codeb_infra.facts.podman import CodebContainers, Container, SlotRunner
from codeb_infra.facts.registry import ProjectRegistry, SlotRegistry, SlotSnapshot
from codeb_infra.facts.releases import Releases
from codeb_infra.flows.dns import ZoneRecords
from codeb_infra.operations import api, caddy, checks, powerdns, registry
from codeb_infra.templates.caddy import render_site


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def is_app_host() -> bool:
    """Slots live on the app server; `@local` stands in for it."""
    return "app" in host.groups or host.name.startswith("@local")


def holder(action: str) -> str:
    """Who holds a deploy lock, as the lock error names it."""
    return f"{action} by {getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} {utcnow().isoformat()}"


def all_succeeded(steps: list[OperationMeta]) -> bool:
    return all(step.did_succeed() for step in steps)


class LockedRun:
    """Operations of one change under the deploy lock; each runs only if all before it succeeded."""

    def __init__(
        self, settings: HostSettings, request: DeployRequest | SlotRequest, action: str, *, tool_current: bool = False
    ) -> None:
        self.settings = settings
        self.request = request
        self.steps: list[OperationMeta] = []
        self.holder = holder(action)
        if not tool_current:
            self.steps.append(registry.state_tool(name="Install codeb-state", path=settings.state_tool))
        self.step(
            checks.lock,
            name=f"Lock {request.project}/{request.env.value}",
            _ignore_errors=False,
            tool=settings.state_tool,
            locks_dir=settings.locks_dir,
            project=request.project,
            env=request.env.value,
            holder=self.holder,
            wait=request.lock_wait,
            break_lock=request.break_lock,
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
            tool=self.settings.state_tool,
            locks_dir=self.settings.locks_dir,
            project=self.request.project,
            env=self.request.env.value,
            holder=self.holder,
        )
        checks.failure(name="Report failure", message=failure_message, _if=lambda: not ok())


def read_context(request: DeployRequest | SlotRequest) -> tuple[HostSettings, Any, SlotPair, bool]:
    settings = HostSettings.from_data(host.data)
    projects = host.get_fact(ProjectRegistry, registry_dir=settings.registry_dir)
    table = host.get_fact(SlotRegistry, registry_dir=settings.registry_dir)
    return settings, projects, table.pair(request.project, request.env), table.has(request.project, request.env)


def _live_container(container: Container) -> LiveContainer:
    return LiveContainer(
        name=container.name,
        id=container.id,
        image=container.image,
        running=container.running,
        spec=container.spec,
        env_digest=container.env_digest,
    )


def read_slots(settings: HostSettings, request: DeployRequest | SlotRequest) -> tuple[LiveSlots, bool]:
    """One project/env's live state, in one round trip through `codeb-state snapshot` when the
    server's tool is there (else through the single facts), and whether that tool is this one."""
    live, tool_current, _ = _read_live(settings, request, "")
    return live, tool_current


def read_switch(settings: HostSettings, request: SlotRequest, release_log: str) -> tuple[LiveSlots, bool, ReleaseLog]:
    """`read_slots` and the release log at ``release_log``, in the same one round trip."""
    live, tool_current, log = _read_live(settings, request, release_log)
    return live, tool_current, log if log is not None else host.get_fact(Releases, path=release_log)


def _read_live(
    settings: HostSettings, request: DeployRequest | SlotRequest, release_log: str
) -> tuple[LiveSlots, bool, ReleaseLog | None]:
    paths = {role: settings.pointer_file(request.project, request.env, role) for role in ("active", "preview")}
    snap = host.get_fact(
        SlotSnapshot,
        tool=settings.state_tool,
        registry_dir=settings.registry_dir,
        project=request.project,
        env=request.env.value,
        pointers=tuple(paths.values()),
        releases=release_log,
    )
    log = None
    if snap is not None:
        record = snap.slots or SlotPairRecord()
        entry, existed, found = snap.project, snap.slots is not None, snap.containers
        pair = SlotPair(project=request.project, env=request.env, blue=record.blue, green=record.green)
        addresses = {role: snap.pointers.get(path) for role, path in paths.items()}
        tool_current = snap.tool == registry.TOOL_DIGEST
        log = (snap.releases or ReleaseLog()) if release_log else None
    else:
        _, projects, pair, existed = read_context(request)
        entry = projects.get(request.project, request.env)
        found = host.get_fact(CodebContainers, project=request.project, env=request.env.value)
        addresses = {role: host.get_fact(UpstreamPointer, path=path) for role, path in paths.items()}
        tool_current = False
    live = LiveSlots(
        host=host.name,
        project=request.project,
        env=request.env,
        entry=entry,
        pair=pair,
        existed=existed,
        containers={c.name: _live_container(c) for c in found},
        pointers=addresses,
        pointer_paths=paths,
        network=settings.network,
    )
    return live, tool_current, log


def env_files(settings: HostSettings, request: DeployRequest) -> tuple[tuple[str, ...], str]:
    """The env files a slot reads, in order (the master env last, so its protected variables
    win), and one digest of their contents: a change to either replaces the container."""
    paths = (env_file(settings, request), settings.master_env_file(request.project))
    present = [(path, digest) for path in paths if (digest := host.get_fact(Sha256File, path=path))]
    if not present:
        return (), ""
    if len(present) == 1:
        return (present[0][0],), present[0][1][:16]
    combined = hashlib.sha256("".join(digest for _, digest in present).encode()).hexdigest()
    return tuple(path for path, _ in present), combined[:16]


def env_file(settings: HostSettings, request: DeployRequest) -> str:
    """The live env file, or the stored version a rollback to a release pins."""
    if request.env_version is None:
        return settings.env_file(request.project, request.env)
    return EnvStore(settings.codeb_dir, request.project, request.env.value).version_file(request.env_version)


def pointer_steps(
    run: LockedRun, settings: HostSettings, request: DeployRequest | SlotRequest, pair: SlotPair, entry: ProjectEnv
) -> None:
    # The domain's pointer first: the switch is the one rename that matters.
    for role, address in plans.pointer_targets(pair, entry).items():
        if address is not None:
            run.step(
                caddy.upstream,
                name=f"Point {role} upstream of {request.project}/{request.env.value} at {address}",
                path=settings.pointer_file(request.project, request.env, role),
                address=address,
            )


def routing_steps(
    run: LockedRun,
    settings: HostSettings,
    request: DeployRequest,
    plan: plans.DeployPlan,
    pair: SlotPair,
    site: str,
    records: list[ZoneRecords],
) -> None:
    """Registry entry, upstream pointers, Caddy site and DNS records of a project/env."""
    run.step(
        registry.project_entry,
        name=f"Register {request.project}/{request.env.value}",
        registry_dir=settings.registry_dir,
        tool=settings.state_tool,
        project=request.project,
        env=request.env,
        entry=plan.entry,
    )
    pointer_steps(run, settings, request, pair, plan.entry)
    # Records before the site: with ACME, Caddy orders a certificate as soon as it loads the site,
    # and the CA must then find the name pointing here.
    dns_settings = DnsSettings.from_data(host.data)
    for zone_records in records:
        run.step(
            powerdns.address_records,
            name=f"DNS {', '.join(zone_records.names)} -> app server",
            zone=zone_records.zone,
            names=list(zone_records.names),
            addresses=dns_settings.addresses(),
            owner=zone_records.owner,
            prune=True,
            api=dns_settings.api,
        )
    # Caddy's own user must own its access log: `caddy validate` runs as root and would otherwise
    # create it root-only, and the running Caddy could then not open it.
    run.step(
        files.file,
        name=f"Caddy access log of {request.project}-{request.env.value}",
        path=settings.access_log(request.project, request.env),
        user=settings.caddy_user,
        group=settings.caddy_user,
        mode="600",
        create_remote_dir=True,
    )
    run.step(
        caddy.site,
        name=f"Caddy site {request.project}-{request.env.value}",
        path=settings.site_file(request.project, request.env),
        content=site,
        caddyfile=settings.caddyfile,
        caddy_bin=settings.caddy_bin,
    )


def slot_runner(settings: HostSettings) -> str:
    return settings.slot_units if settings.slot_units != "auto" else host.get_fact(SlotRunner)


def project_site(settings: HostSettings, request: DeployRequest, entry: ProjectEnv) -> str:
    return render_site(
        project=request.project,
        env=request.env,
        domains=entry.domains,
        preview_domains=[names.preview_domain(request.project, request.env, settings.base_domain)],
        tls=settings.tls,
        active_pointer=settings.pointer_file(request.project, request.env, "active"),
        preview_pointer=settings.pointer_file(request.project, request.env, "preview"),
        access_log=settings.access_log(request.project, request.env),
    )
