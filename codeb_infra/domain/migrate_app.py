"""Moving the app server to a new machine: the steps and where a re-run resumes, the step record
kept on the target, which DNS records change, the preflight checks' verdicts and the relay the
source's Caddy uses during the grace period. Pure: no I/O."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.dns import OWNER_ACCOUNT, Comment, RRset, Zone
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.migrate import Check, record_path
from codeb_infra.domain.names import Slot, container_name, preview_domain
from codeb_infra.domain.registry import Projects, SlotTable
from codeb_infra.domain.slots import Release, SlotState

RECORD_PATH = record_path("app")
# The source's Caddy reaches the target's relay over the private network (the mesh) on these ports.
RELAY_PORT_BASE = 7400
RELAY_SITE = "codeb-migration-relay.caddy"
# A comment on an RRset whose TTL was lowered for a move: when, and from what.
TTL_NOTE_PREFIX = "ttl-lowered-from="
LOW_TTL = 60
DISK_MARGIN = 1.5
DISK_SPARE_BYTES = 512 * 1024 * 1024
RUNNING_STATES = (SlotState.ACTIVE, SlotState.DEPLOYED, SlotState.GRACE)


class Step(StrEnum):
    """In the order a migration runs them; each can run again and change nothing."""

    BOOTSTRAP = "bootstrap"  # the target set up as an app server (and a mesh peer)
    STATE = "state"  # registry, env files, Caddy sites and pointers, slot units copied
    IMAGES = "images"  # every slot's image loaded on the target
    SLOTS = "slots"  # the slots started there, the relay site loaded
    HEALTH = "health"  # every domain answers through the target's Caddy
    RELAY = "relay"  # the source's pointers name the target's relay
    DNS = "dns"  # the address records switched (source and target PowerDNS)


STEPS = tuple(Step)


class MigrationRecord(BaseModel):
    """The step record, kept on the target (/opt/codeb/migration/app.json): a re-run from any
    controller reads it and continues; --abort reads what to put back from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    source: str
    target: str
    source_address: str
    target_address: str
    started: datetime
    done: tuple[Step, ...] = ()
    source_pointers: dict[str, str] = {}
    dns_switched_at: datetime | None = None
    grace_until: datetime | None = None
    aborted_at: datetime | None = None

    def with_step(self, step: Step, **changes: object) -> MigrationRecord:
        done = self.done if step in self.done else (*self.done, step)
        return self.model_copy(update={"done": done, **changes})


def start_record(
    existing: MigrationRecord | None,
    *,
    source: str,
    target: str,
    source_address: str,
    target_address: str,
    now: datetime,
) -> MigrationRecord:
    """The record a run continues from: the target's own, or a new one. A record naming another
    source (or an aborted move) is refused rather than mixed up."""
    if existing is None or existing.aborted_at is not None:
        return MigrationRecord(
            source=source, target=target, source_address=source_address, target_address=target_address, started=now
        )
    if (existing.source, existing.source_address) != (source, source_address):
        raise CodebError(
            f"{target} holds a migration from {existing.source} ({existing.source_address}), not from {source}:"
            f" finish or abort that one first"
        )
    return existing


def remaining_steps(record: MigrationRecord) -> tuple[Step, ...]:
    """The steps still to run, in order: after a kill the first of them is where a re-run resumes.
    A step is only recorded after it finished, so it runs again when killed midway."""
    return tuple(step for step in STEPS if step not in record.done)


def abort_allowed(record: MigrationRecord | None, now: datetime) -> MigrationRecord:
    """The record an abort works from: there must be a move, not yet aborted, still in grace."""
    if record is None:
        raise CodebError("no app migration recorded on the target: nothing to abort")
    if record.aborted_at is not None:
        raise CodebError(f"the migration from {record.source} was already aborted at {record.aborted_at.isoformat()}")
    if record.grace_until is not None and now > record.grace_until:
        raise CodebError(
            f"the grace period ended at {record.grace_until.isoformat()}: the source may no longer be serving;"
            " migrate back instead"
        )
    return record


# --- DNS ---------------------------------------------------------------------------------------


def address_changes(zone: Zone | None, old: str, new: str) -> tuple[RRset, ...]:
    """Every A RRset of the zone that names ``old``, now naming ``new`` (TTL and comments kept):
    the projects' domains and preview domains, aliases and the server names."""
    if zone is None:
        return ()
    changed = []
    for rrset in zone.rrsets:
        if rrset.rtype != "A" or old not in rrset.contents:
            continue
        contents = tuple(sorted({new if c == old else c for c in rrset.contents}))
        changed.append(rrset.model_copy(update={"contents": contents}))
    return tuple(changed)


def lowered_ttl(rrset: RRset, ttl: int = LOW_TTL) -> RRset:
    """The RRset with a lower TTL and a note of the old one (PowerDNS stamps the note's time)."""
    if rrset.ttl <= ttl:
        return rrset
    note = Comment(content=f"{TTL_NOTE_PREFIX}{rrset.ttl}", account=OWNER_ACCOUNT)
    kept = tuple(c for c in rrset.comments if not c.content.startswith(TTL_NOTE_PREFIX))
    return rrset.model_copy(update={"ttl": ttl, "comments": (*kept, note)})


def _ttl_note(rrset: RRset) -> tuple[int, int | None] | None:
    for comment in rrset.comments:
        if comment.account == OWNER_ACCOUNT and comment.content.startswith(TTL_NOTE_PREFIX):
            try:
                return int(comment.content[len(TTL_NOTE_PREFIX) :]), comment.modified_at
            except ValueError:
                return None
    return None


def stale_for(rrset: RRset, now: datetime) -> int:
    """How long a resolver may still hold an old answer for this name: its TTL, or the TTL it had
    before it was lowered while that one has not run out since."""
    note = _ttl_note(rrset)
    if note is None:
        return rrset.ttl
    old_ttl, lowered_at = note
    if lowered_at is None:
        return max(rrset.ttl, old_ttl)
    waited = now.timestamp() - lowered_at
    return max(rrset.ttl, int(old_ttl - waited)) if waited < old_ttl else rrset.ttl


# --- preflight ---------------------------------------------------------------------------------


def unhealthy(probe: Mapping[str, object]) -> list[str]:
    """What failed in a `codeb-health probe` report: each domain whose health path did not answer 2xx."""
    if "error" in probe:
        return [f"the probe failed: {probe['error']}"]
    failed = []
    for row in probe.get("probes") or []:  # type: ignore[attr-defined]
        status = row.get("status")
        if not (isinstance(status, int) and 200 <= status < 300):
            failed.append(f"https://{row.get('domain')}{row.get('path')} answered {status or row.get('error')}")
    return failed


def reach_check(target: str, error: str | None) -> Check:
    if error is None:
        return Check(name="target reachable", ok=True, detail=f"{target} answers over SSH")
    return Check(name="target reachable", ok=False, detail=f"cannot reach {target}: {error}")


def disk_check(target: str, *, image_bytes: int, free_bytes: int | None) -> Check:
    """The target's container storage must hold every slot image with a margin."""
    need = int(image_bytes * DISK_MARGIN) + DISK_SPARE_BYTES
    if free_bytes is None:
        return Check(name="free disk for images", ok=False, detail=f"could not read the free disk of {target}")
    detail = f"{_mib(free_bytes)} free on {target}, images need {_mib(image_bytes)}"
    detail += f" (x{DISK_MARGIN} + {_mib(DISK_SPARE_BYTES)})"
    if free_bytes < need:
        return Check(name="free disk for images", ok=False, detail=f"too little disk: {detail}")
    return Check(name="free disk for images", ok=True, detail=detail)


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MiB"


def ttl_checks(changes: Iterable[RRset], *, grace: timedelta, now: datetime, lower: Mapping[str, str]) -> list[Check]:
    """One check per record that will change. Stale answers are harmless while the source relays
    to the target, so a record fails only when a resolver may hold it longer than the grace
    period; a TTL above LOW_TTL is still reported with the command that lowers it (``lower``,
    keyed by record name), so the source can be retired sooner."""
    checks = []
    for rrset in changes:
        stale = stale_for(rrset, now)
        note = _ttl_note(rrset)
        said = f"{rrset.name} A TTL {rrset.ttl} s"
        if note is not None and note[1] is not None:
            ago = int(now.timestamp() - note[1])
            lowered_enough = ago >= note[0]
            said += (
                f", lowered from {note[0]} s {ago} s ago ({'at least' if lowered_enough else 'less than'} one old TTL)"
            )
        said += f"; stale answers up to {stale} s, the source relays for {int(grace.total_seconds())} s"
        if stale > grace.total_seconds():
            checks.append(
                Check(name="DNS TTL", ok=False, detail=f"{said}: too long; lower it first: {lower[rrset.name]}")
            )
            continue
        if rrset.ttl > LOW_TTL:
            said += f"; to retire the source sooner, lower it one old TTL before: {lower[rrset.name]}"
        checks.append(Check(name="DNS TTL", ok=True, detail=said))
    return checks


def outside_changes(zones: Iterable[str], nameservers: Iterable[str], target_address: str) -> list[str]:
    """What the user changes at the registrar: the app server runs the zones' PowerDNS, so their
    NS (and the glue of a nameserver named inside its own zone) must point at the target."""
    names = list(nameservers)
    lines = []
    for zone in zones:
        lines.append(f"at the registrar of {zone.rstrip('.')}: NS {', '.join(n.rstrip('.') for n in names)}")
        for ns in names:
            if ns == zone or ns.endswith("." + zone):
                lines.append(f"  glue record {ns.rstrip('.')} A {target_address} (it is inside its own zone)")
    return lines


# --- what moves --------------------------------------------------------------------------------


class RelayRoute(BaseModel):
    """One domain the target's relay serves: the pointer it follows and the port it listens on."""

    model_config = ConfigDict(frozen=True)

    domain: str
    pointer: str
    port: int


def pointer_paths(projects: Projects, upstreams_dir: str) -> list[str]:
    return [
        posixpath.join(upstreams_dir, f"{project}-{env.value}.{role}")
        for project, envs in sorted(projects.projects.items())
        for env in sorted(envs, key=lambda e: e.value)
        for role in ("active", "preview")
    ]


def health_targets(projects: Projects, slots: SlotTable, base_domain: str) -> list[tuple[str, str]]:
    """(domain, health path) of every project's domain, and of its preview domain when the other
    slot runs a release too (an empty one answers 502 there, on the source as well)."""
    running = set(running_containers(slots))
    found = []
    for project, envs in sorted(projects.projects.items()):
        for env, entry in sorted(envs.items(), key=lambda kv: kv[0].value):
            found.append((entry.domain, entry.health_path))
            if all(container_name(project, env, slot) in running for slot in Slot):
                found.append((preview_domain(project, env, base_domain), entry.health_path))
    return found


def relay_routes(projects: Projects, upstreams_dir: str, base_domain: str) -> list[RelayRoute]:
    """One relay port per pointer file of the source: the source's pointer is switched to
    ``TARGET:port`` (a rename, no reload), and the relay on the target serves that pointer's
    domains from the target's own pointer, so a promote or rollback there is followed too."""
    routes = []
    port = RELAY_PORT_BASE
    for project, envs in sorted(projects.projects.items()):
        for env in sorted(envs, key=lambda e: e.value):
            entry = envs[env]
            base = posixpath.join(upstreams_dir, f"{project}-{env.value}")
            routes.append(RelayRoute(domain=",".join(entry.domains), pointer=f"{base}.active", port=port))
            routes.append(
                RelayRoute(domain=preview_domain(project, env, base_domain), pointer=f"{base}.preview", port=port + 1)
            )
            port += 2
    return routes


def relay_site(routes: Iterable[RelayRoute], bind: str) -> str:
    """The target's relay: plain HTTP on its private (mesh) address only, one port per pointer."""
    blocks = ["# Written by codeb migrate app: the source's Caddy relays here during the grace period."]
    for route in routes:
        blocks.append(
            f"http://:{route.port} {{\n\tbind {bind}\n\tvars upstream {{file.{route.pointer}}}\n"
            "\treverse_proxy {vars.upstream}\n}"
        )
    return "\n".join(blocks) + "\n"


def relay_pointers(routes: Iterable[RelayRoute], target_address: str) -> dict[str, str]:
    """What the source's pointer files hold during the grace period."""
    return {route.pointer: f"{target_address}:{route.port}" for route in routes}


def _serving(slots: SlotTable) -> list[tuple[str, Release]]:
    """(container, release) of every slot that runs a release (active, deployed or in grace)."""
    found = []
    for project, envs in sorted(slots.slots.items()):
        for env, pair in sorted(envs.items(), key=lambda kv: kv[0].value):
            for slot, record in ((Slot.BLUE, pair.blue), (Slot.GREEN, pair.green)):
                if record.release is not None and record.state in RUNNING_STATES:
                    found.append((container_name(project, env, slot), record.release))
    return found


def slot_images(slots: SlotTable) -> list[str]:
    """Every image the running slots use, each once."""
    return sorted({release.image for _, release in _serving(slots)})


def running_containers(slots: SlotTable) -> list[str]:
    """The slot containers the target starts: the active one and the other (preview or grace)."""
    return [container for container, _ in _serving(slots)]


def requests_since(lines: Iterable[str], since: datetime) -> tuple[int, float | None]:
    """Requests the source's Caddy logged (JSON access log lines) after ``since``: how many, and
    the time of the last one (Unix seconds)."""
    count, last = 0, None
    cutoff = since.timestamp()
    for line in lines:
        try:
            ts = float(json.loads(line)["ts"])
        except (ValueError, KeyError, TypeError):
            continue
        if ts > cutoff:
            count += 1
            last = ts if last is None else max(last, ts)
    return count, last
