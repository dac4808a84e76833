"""What `codeb health` concludes from a snapshot of the four servers: each finding names the server,
what is wrong, since when (where known) and the command that fixes it. Pure: the snapshot is read
elsewhere (flows/health.py, remote/codeb_health.py); nothing here touches a host."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from codeb_infra.domain import data, dns, names, plans
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.registry import ProjectEnv, Projects, SlotTable
from codeb_infra.domain.slots import SlotPair, SlotState

DISK_LIMIT_PERCENT = 90.0
MEMORY_MIN_AVAILABLE_PERCENT = 10.0
CLOCK_TOLERANCE_SECONDS = 5.0
"""Servers' clocks are compared through SSH round trips, so a few seconds of slack: a clock that
is off by more is not synchronised at all."""
RESTART_LOOP = 3
LOCK_MAX_AGE = timedelta(hours=1)
CERTIFICATE_MIN_DAYS = 14
RUNNING_STATES = (SlotState.DEPLOYED, SlotState.ACTIVE, SlotState.GRACE)
"""Slot states whose container should exist and answer."""

BACKUP_FIXES = {
    "storage server": "check that the storage server is up and reachable over SSH",
    "backup server": "check that the backup server is up and its sshd runs (systemctl status ssh on backup)",
    "WAL archiving": "make the backup server reachable from storage (ssh codeb-backup true as postgres on storage); "
    "archiving resumes by itself",
    "WAL waiting to be archived": "journalctl -u postgresql@15-main on storage: archive_command failures say why",
    "Redis persistence": "codeb bootstrap -i INVENTORY (restores appendonly) and redis-cli INFO persistence on storage",
    "base backup": "codeb backup now base",
    "WAL on backup server": "codeb backup status; check archive_command on storage (journalctl -u postgresql@15-main)",
    "Redis RDB": "codeb backup now redis",
    "restore drill": "codeb backup verify (prints what failed)",
}
STORAGE_BACKUP_CHECKS = ("storage server", "WAL archiving", "WAL waiting to be archived", "Redis persistence")


@dataclass(frozen=True)
class Finding:
    server: str
    check: str
    problem: str
    fix: str
    since: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "check": self.check,
            "problem": self.problem,
            "fix": self.fix,
            "since": self.since.isoformat() if self.since else None,
        }


@dataclass(frozen=True)
class Report:
    findings: list[Finding]
    checked: list[str]
    """What was checked (one line per check), so a clean report says what it covered."""

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [f.as_dict() for f in self.findings], "checked": self.checked}


@dataclass(frozen=True)
class Unit:
    """A systemd unit a role runs: a service that must be active, or a job whose last run must
    have succeeded (and whose timer must be active). Optional units are checked when installed."""

    unit: str
    job: bool = False
    optional: bool = False


def role_units(roles: set[str], postgres_unit: str = "postgresql@15-main.service") -> list[Unit]:
    # Monitoring's units are optional: checked once a bootstrap installed them.
    found: list[Unit] = [
        Unit("ssh.service"),
        Unit("prometheus-node-exporter.service", optional=True),
        Unit("codeb-metrics.timer", optional=True),
    ]
    if "app" in roles:
        found += [Unit("caddy.service"), Unit("pdns.service"), Unit("codeb-api.service", optional=True)]
    if "streaming" in roles:
        found += [Unit("centrifugo.service"), Unit("caddy.service")]
    if "storage" in roles:
        found += [
            Unit(postgres_unit),
            Unit("redis-server.service"),
            Unit("prometheus-postgres-exporter.service", optional=True),
            Unit("prometheus-redis-exporter.service", optional=True),
        ]
    if "backup" in roles:
        found += [Unit("prometheus.service", optional=True), Unit("prometheus-alertmanager.service", optional=True)]
    schedules = [
        *(data.STORAGE_SCHEDULES if "storage" in roles else ()),
        *(data.BACKUP_SCHEDULES if "backup" in roles else ()),
    ]
    for schedule in schedules:
        found += [Unit(f"{schedule.name}.timer"), Unit(f"{schedule.name}.service", job=True)]
    return found


def disk_paths(roles: set[str]) -> list[str]:
    paths = ["/"]
    if "app" in roles:
        paths.append("/var/lib/containers")
    if "storage" in roles:
        paths.append("/var/lib/postgresql")
    if "backup" in roles:
        paths.append("/srv/backup")
    return paths


@dataclass(frozen=True)
class ServerSnapshot:
    """What one server said: `codeb-health read` (and `probe` on the app server), or why it did not."""

    name: str
    roles: frozenset[str]
    read: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None
    error: str | None = None
    asked_at: float | None = None
    """The controller's clock just before the read: the base of the clock comparison."""
    units: tuple[Unit, ...] = ()


@dataclass(frozen=True)
class AppLayout:
    """Paths and names on the app server that findings and fixes refer to."""

    base_domain: str
    zones: tuple[str, ...]
    addresses: tuple[str, ...]
    """What our PowerDNS should answer for a project's domain: the app server's address."""
    sites_dir: str = "/etc/caddy/sites"
    locks_dir: str = "/opt/codeb/locks"
    quadlet_dir: str = "/etc/containers/systemd"


@dataclass(frozen=True)
class Snapshot:
    servers: list[ServerSnapshot]
    layout: AppLayout
    now: datetime
    backups: list[data.Check] | None = None


def _at(value: object) -> datetime | None:
    """A time as the reader reports it: unix seconds, `@unix`, or ISO text; None when unknown."""
    if value in (None, "", 0, "0", "@0", "n/a"):
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(float(value), UTC)
        text = str(value)
        if text.startswith("@"):
            return datetime.fromtimestamp(float(text[1:]), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _on(server: str, command: str) -> str:
    return f"on {server}: {command}"


# ---------------------------------------------------------------- servers


def server_findings(server: ServerSnapshot) -> list[Finding]:
    if server.error is not None or server.read is None:
        return [
            Finding(
                server.name,
                "SSH",
                f"cannot be reached: {server.error or 'no answer'}",
                "check that the server is up, sshd runs, and its address, port and key in the inventory",
            )
        ]
    if "error" in server.read:
        return [Finding(server.name, "codeb-health", str(server.read["error"]), "codeb bootstrap -i INVENTORY")]
    found: list[Finding] = []
    units = server.read.get("units") or {}
    for unit in server.units:
        found += _unit_findings(server.name, unit, units.get(unit.unit))
    for path, disk in (server.read.get("disks") or {}).items():
        for key, what in (("used_percent", "disk"), ("inodes_used_percent", "inodes")):
            if float(disk.get(key) or 0) > DISK_LIMIT_PERCENT:
                found.append(
                    Finding(
                        server.name,
                        f"{what} {path}",
                        f"{disk[key]}% of {what} used on {path} (limit {DISK_LIMIT_PERCENT:g}%)",
                        _on(
                            server.name,
                            f"free space on {path}: `podman image prune` and `codeb cleanup PROJECT` on app, "
                            "old backups are pruned daily (codeb-backup-prune)",
                        ),
                    )
                )
    memory = server.read.get("memory") or {}
    total, available = memory.get("total_bytes"), memory.get("available_bytes")
    if total and available is not None and 100.0 * available / total < MEMORY_MIN_AVAILABLE_PERCENT:
        found.append(
            Finding(
                server.name,
                "memory",
                f"only {100.0 * available / total:.0f}% of memory available "
                f"({available // 2**20} of {total // 2**20} MiB)",
                _on(server.name, "see what uses it: ps aux --sort=-rss | head; restart or move it"),
            )
        )
    return found


def _unit_findings(server: str, unit: Unit, props: dict[str, str] | None) -> list[Finding]:
    name = unit.unit
    check = f"unit {name}"
    if props is None or props.get("LoadState") in ("not-found", None):
        if unit.optional:
            return []
        return [Finding(server, check, f"{name} is not installed", "codeb bootstrap -i INVENTORY")]
    since = _at(props.get("StateChangeTimestamp"))
    logs = f"journalctl -u {name} -n 50"
    if unit.job:
        status = props.get("ExecMainStatus") or "0"
        if props.get("Result") not in (None, "success") or status != "0":
            return [
                Finding(
                    server,
                    check,
                    f"last run failed ({props.get('Result')}, exit status {status})",
                    _on(server, f"{logs}, then systemctl start {name}"),
                    _at(props.get("ExecMainExitTimestamp")) or since,
                )
            ]
        return []
    restarts = int(props.get("NRestarts") or 0)
    if restarts >= RESTART_LOOP or props.get("SubState") == "auto-restart":
        return [
            Finding(
                server,
                check,
                f"{name} restarts in a loop ({restarts} automatic restarts)",
                _on(server, f"{logs}: it says why it exits"),
                since,
            )
        ]
    state = props.get("ActiveState")
    if state != "active":
        return [
            Finding(
                server,
                check,
                f"{name} is {state} ({props.get('SubState')}, result {props.get('Result')})",
                _on(server, f"{logs}, then systemctl restart {name}"),
                since,
            )
        ]
    return []


def clock_findings(servers: list[ServerSnapshot]) -> list[Finding]:
    """Each server's clock against the median offset from the controller's clock."""
    offsets = {
        s.name: float(s.read["time"]) - s.asked_at
        for s in servers
        if s.read and s.read.get("time") is not None and s.asked_at is not None
    }
    if len(offsets) < 2:
        return []
    middle = statistics.median(offsets.values())
    return [
        Finding(
            name,
            "clock",
            f"clock is {offset - middle:+.1f}s off the other servers' (tolerance {CLOCK_TOLERANCE_SECONDS:g}s)",
            _on(name, "timedatectl set-ntp true (and check systemd-timesyncd or chrony runs)"),
        )
        for name, offset in sorted(offsets.items())
        if abs(offset - middle) > CLOCK_TOLERANCE_SECONDS
    ]


# ---------------------------------------------------------------- the app server's projects


@dataclass(frozen=True)
class AppState:
    projects: Projects
    slots: SlotTable
    containers: dict[str, dict[str, Any]]
    pointers: dict[str, dict[str, Any]]
    sites: set[str]
    quadlet: set[str]
    locks: dict[str, dict[str, Any]]


def app_state(read: dict[str, Any]) -> AppState:
    """The app server's registry and what runs, parsed; a broken registry file is a CodebError."""
    app = read.get("app") or {}
    for key in ("projects", "slots"):
        if isinstance(app.get(key), dict) and "error" in app[key]:
            raise CodebError(str(app[key]["error"]))
    try:
        projects = Projects.model_validate(app.get("projects") or {})
        table = SlotTable.model_validate(app.get("slots") or {})
    except ValidationError as error:
        raise CodebError(f"the registry is not valid ({error.error_count()} errors): fix or restore it") from None
    containers = app.get("containers")
    if not isinstance(containers, list):
        raise CodebError(f"podman ps failed: {(containers or {}).get('error')}")
    return AppState(
        projects,
        table,
        {c["name"]: c for c in containers},
        app.get("pointers") or {},
        set(app.get("sites") or ()),
        set(app.get("quadlet") or ()),
        app.get("locks") or {},
    )


def entries(projects: Projects) -> list[tuple[str, Environment, ProjectEnv]]:
    return [
        (project, env, entry)
        for project, envs in sorted(projects.projects.items())
        for env, entry in sorted(envs.items())
    ]


def _preview_slot(pair: SlotPair) -> Slot | None:
    """The slot the preview domain serves, when it holds a release that should answer."""
    active = pair.active
    candidates = [active.other] if active else [s for s in Slot if pair.record(s).state is SlotState.DEPLOYED]
    return next((s for s in candidates if pair.record(s).state in (SlotState.DEPLOYED, SlotState.GRACE)), None)


@dataclass(frozen=True)
class Target:
    """A domain whose health path is asked through Caddy, and the slot that should answer it."""

    project: str
    env: Environment
    role: str  # "active" or "preview"
    slot: Slot
    domain: str
    path: str


def probe_targets(state: AppState, layout: AppLayout) -> tuple[list[Target], list[str]]:
    """The health paths to ask through Caddy, and the domains to resolve with our PowerDNS."""
    targets: list[Target] = []
    resolve: list[str] = []
    for project, env, entry in entries(state.projects):
        pair = state.slots.pair(project, env)
        if pair.active is not None:
            targets.append(Target(project, env, "active", pair.active, entry.domain, entry.health_path))
        preview = _preview_slot(pair)
        if preview is not None:
            targets.append(
                Target(
                    project,
                    env,
                    "preview",
                    preview,
                    names.preview_domain(project, env, layout.base_domain),
                    entry.health_path,
                )
            )
        resolve += [d for d in entry.domains if _managed(d, layout.zones)]
    return targets, resolve


def _managed(domain: str, zones: tuple[str, ...]) -> bool:
    try:
        dns.zone_for(domain, zones)
        return True
    except CodebError:
        return False


def _slot_fix(project: str, env: Environment, pair: SlotPair, slot: Slot) -> str:
    record = pair.record(slot)
    image = record.release.image if record.release else "IMAGE"
    where = f"{project} --env {env.value}"
    if record.state is SlotState.ACTIVE:
        back = f"codeb rollback {where} (the slot in grace serves at once), or " if pair.in_grace else ""
        return f"{back}codeb deploy {where} --image {image} then codeb promote {where}"
    if record.state is SlotState.GRACE:
        return f"codeb cleanup {where} --force (drops the rollback slot)"
    return f"codeb deploy {where} --image {image}"


def project_findings(state: AppState, layout: AppLayout, probe: dict[str, Any], now: datetime) -> list[Finding]:
    found: list[Finding] = []
    targets, _ = probe_targets(state, layout)
    probes = {p.get("domain"): p for p in probe.get("probes") or []}
    for target in targets:
        found += _probe_findings(state, target, probes.get(target.domain), now)
    for domain, answer in sorted((probe.get("dns") or {}).items()):
        addresses = answer.get("addresses")
        if addresses is None or set(addresses) != set(layout.addresses):
            owner = state.projects.domain_owner(domain)
            where = f"{owner[0]} --env {owner[1].value}" if owner else "PROJECT"
            said = answer.get("error") or (", ".join(addresses) if addresses else "no A record")
            found.append(
                Finding(
                    "app",
                    f"DNS {domain}",
                    f"our PowerDNS answers {said}, not {', '.join(layout.addresses)}",
                    f"codeb deploy {where} --image IMAGE (the running release; writes the records again)",
                )
            )
    for project, env, entry in entries(state.projects):
        pair = state.slots.pair(project, env)
        for slot in Slot:
            found += _slot_findings(state, layout, project, env, entry, pair, slot, now)
    return found


def _probe_findings(state: AppState, target: Target, probe: dict[str, Any] | None, now: datetime) -> list[Finding]:
    pair = state.slots.pair(target.project, target.env)
    check = f"{target.role} {target.project}/{target.env.value}"
    url = f"https://{target.domain}{target.path}"
    if probe is None:
        return [Finding("app", check, f"{url} was not asked", "codeb bootstrap -i INVENTORY (installs codeb-health)")]
    found = []
    status = probe.get("status")
    if not isinstance(status, int) or not 200 <= status < 300:
        said = f"HTTP {status}" if status else (probe.get("error") or "no answer")
        container = names.container_name(target.project, target.env, target.slot)
        fix = (
            _slot_fix(target.project, target.env, pair, target.slot)
            if target.role == "active"
            else f"podman logs --tail 50 {container} on app, then deploy a fixed release"
        )
        found.append(Finding("app", check, f"{url} through Caddy: {said} ({target.slot.value} slot)", fix))
    certificate = probe.get("certificate")
    if certificate is not None:
        if not certificate.get("valid"):
            found.append(
                Finding(
                    "app",
                    f"TLS {target.domain}",
                    f"certificate not valid: {certificate.get('error')}",
                    "journalctl -u caddy -n 100 on app (ACME errors),"
                    " and check the domain's DNS points at the app server",
                )
            )
        else:
            expires = _at(certificate.get("not_after"))
            if expires is not None and expires - now < renewal_margin(_at(certificate.get("not_before")), expires):
                left = expires - now
                said = (
                    f"{left.days} days"
                    if left >= timedelta(days=2)
                    else f"{max(left.total_seconds(), 0) / 3600:.1f} hours"
                )
                found.append(
                    Finding(
                        "app",
                        f"TLS {target.domain}",
                        f"certificate expires {expires.isoformat()} ({said} left)",
                        "journalctl -u caddy -n 100 on app: Caddy renews well before this, so renewal is failing",
                    )
                )
    return found


def renewal_margin(issued: datetime | None, expires: datetime) -> timedelta:
    """How close to its expiry a certificate may get: 14 days, or a third of its lifetime for
    short-lived ones (Caddy's internal CA issues 12-hour certificates and renews them at a third)."""
    limit = timedelta(days=CERTIFICATE_MIN_DAYS)
    return min(limit, (expires - issued) / 3) if issued is not None else limit


def _slot_findings(
    state: AppState,
    layout: AppLayout,
    project: str,
    env: Environment,
    entry: ProjectEnv,
    pair: SlotPair,
    slot: Slot,
    now: datetime,
) -> list[Finding]:
    record = pair.record(slot)
    container_name = names.container_name(project, env, slot)
    container = state.containers.get(container_name)
    check = f"slot {container_name}"
    found = []
    if record.state in RUNNING_STATES:
        if container is None:
            found.append(
                Finding(
                    "app",
                    check,
                    f"{record.state.value} in the registry but its container is missing",
                    _slot_fix(project, env, pair, slot),
                )
            )
        elif record.state is SlotState.ACTIVE and container.get("state") != "running":
            start = (
                f"systemctl start {container_name}.service"
                if container_name in state.quadlet
                else f"podman start {container_name}"
            )
            found.append(
                Finding(
                    "app",
                    check,
                    f"the active slot's container is {container.get('state')}",
                    _on("app", start),
                    _at(container.get("exited_at")),
                )
            )
    if record.state is SlotState.GRACE and record.grace_until is not None and record.grace_until <= now:
        found.append(
            Finding(
                "app",
                check,
                "its grace period ended but it was not cleaned up",
                f"codeb cleanup {project} --env {env.value}",
                record.grace_until,
            )
        )
    return found


def consistency_findings(state: AppState, layout: AppLayout, now: datetime) -> list[Finding]:
    found: list[Finding] = []
    known = {(p, e.value) for p, e, _ in entries(state.projects)}
    for name, container in sorted(state.containers.items()):
        labels = container.get("labels") or {}
        project, env, slot = labels.get("codeb.project"), labels.get("codeb.environment"), labels.get("codeb.slot")
        recorded = False
        if project is not None and env is not None and (project, env) in known and slot in ("blue", "green"):
            recorded = state.slots.pair(project, Environment(env)).record(Slot(slot)).state is not SlotState.EMPTY
        if not recorded:
            remove = (
                f"systemctl stop {name}.service; rm {layout.quadlet_dir}/{name}.container; systemctl daemon-reload"
                if name in state.quadlet
                else f"podman rm -f {name}"
            )
            found.append(
                Finding("app", f"container {name}", "has codeb labels but no registry entry", _on("app", remove))
            )
    for pointer, seen in sorted(state.pointers.items()):
        found += _pointer_findings(state, pointer, seen)
    for site in sorted(state.sites):
        # Sites of codeb's own (e.g. _metrics) start with "_", which no project name can.
        if site.startswith("_"):
            continue
        if not any(site == f"{p}-{e}" for p, e in known):
            found.append(
                Finding(
                    "app",
                    f"Caddy site {site}",
                    "a site without a registry entry",
                    _on("app", f"rm {layout.sites_dir}/{site}.caddy && systemctl reload caddy"),
                )
            )
    for project, env, _ in entries(state.projects):
        if f"{project}-{env.value}" not in state.sites:
            found.append(
                Finding(
                    "app",
                    f"Caddy site {project}-{env.value}",
                    "registry entry without a Caddy site",
                    f"codeb deploy {project} --env {env.value} --image IMAGE (writes the site), "
                    f"or codeb remove {project} --env {env.value}",
                )
            )
    owners: dict[int, list[str]] = defaultdict(list)
    for project, env, entry in entries(state.projects):
        for port in set(entry.ports.values()):
            owners[port].append(f"{project}/{env.value}")
    for port, who in sorted(owners.items()):
        if len(who) > 1:
            found.append(
                Finding(
                    "app",
                    f"port {port}",
                    f"used by {' and '.join(who)}",
                    f"codeb remove {who[-1].replace('/', ' --env ')}, then deploy it again (it gets a free port)",
                )
            )
    for lock, held in sorted(state.locks.items()):
        since = _at(held.get("since")) or _at(held.get("mtime"))
        if since is not None and now - since > LOCK_MAX_AGE:
            project, _, env = lock.rpartition(".")
            found.append(
                Finding(
                    "app",
                    f"lock {project}/{env}",
                    f"held by {held.get('holder') or 'an unknown run'} for over an hour",
                    "if that run is gone: the next command with --break-lock,"
                    f" or rm {layout.locks_dir}/{lock}.lock on app",
                    since,
                )
            )
    return found


def _pointer_findings(state: AppState, pointer: str, seen: dict[str, Any]) -> list[Finding]:
    base, _, role = pointer.rpartition(".")
    match = next(((p, e, entry) for p, e, entry in entries(state.projects) if f"{p}-{e.value}" == base), None)
    check = f"pointer {pointer}"
    address = seen.get("address")
    if match is None:
        return [
            Finding(
                "app",
                check,
                f"an upstream file without a registry entry (names {address})",
                _on("app", f"rm the file {pointer} under the upstreams directory"),
            )
        ]
    project, env, entry = match
    pair = state.slots.pair(project, env)
    wanted = plans.pointer_targets(pair, entry).get(role)
    slot = next((s for s in Slot if f"127.0.0.1:{entry.ports[s]}" == address), None)
    if wanted is not None and address != wanted:
        return [
            Finding(
                "app",
                check,
                f"names {address}, the registry says {wanted}",
                f"codeb promote {project} --env {env.value} or codeb rollback {project} --env {env.value} --to SLOT "
                "(rewrites the pointer)",
            )
        ]
    if slot is not None and not seen.get("answers") and pair.record(slot).state in RUNNING_STATES:
        return [
            Finding(
                "app",
                check,
                f"names {address} ({slot.value}), where nothing listens",
                _slot_fix(project, env, pair, slot),
            )
        ]
    return []


# ---------------------------------------------------------------- everything


def backup_findings(checks: list[data.Check]) -> list[Finding]:
    found = []
    for check in checks:
        if check.ok:
            continue
        server = "storage" if check.name in STORAGE_BACKUP_CHECKS else "backup"
        fix = BACKUP_FIXES.get(check.name) or (
            "codeb backup now dump" if check.name.startswith("dump ") else "codeb backup status"
        )
        found.append(
            Finding(
                server, check.name, check.detail, fix, check.at if not check.ok and "FAILING" in check.detail else None
            )
        )
    return found


def evaluate(snapshot: Snapshot) -> Report:
    """Every finding of a snapshot, servers first, then projects, consistency and data."""
    found: list[Finding] = []
    checked: list[str] = []
    for server in snapshot.servers:
        found += server_findings(server)
        checked.append(f"{server.name}: SSH, {len(server.units)} units, disk, memory")
    found += clock_findings(snapshot.servers)
    checked.append("clocks")
    for server in snapshot.servers:
        if "app" not in server.roles or server.read is None:
            continue
        try:
            state = app_state(server.read)
        except CodebError as error:
            found.append(
                Finding(server.name, "registry", str(error), "restore ssot.json/slots.json under /opt/codeb/registry")
            )
            continue
        targets, resolve = probe_targets(state, snapshot.layout)
        found += project_findings(state, snapshot.layout, server.probe or {}, snapshot.now)
        found += consistency_findings(state, snapshot.layout, snapshot.now)
        checked += [f"{t.role} {t.project}/{t.env.value} via {t.domain}" for t in targets]
        checked += [f"DNS {d}" for d in resolve]
        checked.append(
            f"consistency: {len(state.containers)} containers, {len(state.pointers)} pointers, "
            f"{len(state.sites)} sites, {len(state.locks)} locks"
        )
    if snapshot.backups is not None:
        found += backup_findings(snapshot.backups)
        checked += [f"backup: {c.name}" for c in snapshot.backups]
    return Report(found, checked)
