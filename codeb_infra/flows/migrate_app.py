"""`codeb migrate app --to HOST`: move the app server (slots, Caddy, PowerDNS's records) to the
target with no failed request.

Read: the source's registry, slots and zones, the target's step record. Decide:
`domain.migrate_app` (the checks, the records that change, the remaining steps, the relay). Apply,
one step at a time, recording each finished step on the target so a re-run continues: bootstrap
the target as an app server, copy the state and the images over the controller's two SSH
connections, start the slots there, health-check them through the target's Caddy, point the
source's pointer files at the target's relay (a rename: the source's Caddy keeps serving, now from
the target), then switch the address records in one PowerDNS change per zone. The source keeps
relaying for the grace period; its access logs tell when nobody comes any more.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyinfra.api import Config, Host, StringCommand
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.context import ctx_host, ctx_inventory, ctx_state

from codeb_infra.commands import files as file_commands
from codeb_infra.commands import migrate_app as commands
from codeb_infra.commands import powerdns as pdns_commands
from codeb_infra.commands.caddy import reload as caddy_reload
from codeb_infra.commands.caddy import write_pointer
from codeb_infra.config.app import DnsSettings, HostSettings
from codeb_infra.controller import runner, transport
from codeb_infra.controller.probe import CADDY_LOCAL_ROOT
from codeb_infra.domain import migrate_app as plan
from codeb_infra.domain.dns import RRset
from codeb_infra.domain.errors import CodebError, RunFailed
from codeb_infra.domain.migrate import Check, check_target, exit_code, report
from codeb_infra.domain.migrate_app import MigrationRecord, Step
from codeb_infra.domain.registry import Projects, SlotTable
from codeb_infra.facts.health import HealthProbe
from codeb_infra.facts.powerdns import PowerDnsZone
from codeb_infra.facts.registry import ProjectRegistry, SlotRegistry
from codeb_infra.roles.network import internal_address

_MISSING = "__codeb_no_migration_record__"
HEALTH_WAIT_SECONDS = 60.0
Say = Callable[[str], None]


@dataclass
class _Pair:
    """The connected source and target, and what was read from the source."""

    state: Any
    source: Host
    target: Host | None
    target_error: str | None
    settings: HostSettings
    dns: DnsSettings
    projects: Projects
    slots: SlotTable
    changes: dict[str, tuple[RRset, ...]]
    target_name: str
    originals: dict[str, tuple[str, ...]]  # record name -> its addresses now

    @property
    def source_address(self) -> str:
        return str(self.dns.public_address)

    @property
    def target_address(self) -> str:
        assert self.target is not None
        return str(DnsSettings.from_data(self.target.data).public_address)


def _hosts(state: Any, target_name: str) -> tuple[Host, Host]:
    sources = list(state.inventory.get_group("app", default=[]))
    if len(sources) != 1:
        raise CodebError(f"the inventory must have exactly one host in group `app` (the source), found {len(sources)}")
    check_target(
        "app", target_name, {h.name: {"migrate_target": h.data.get("migrate_target")} for h in state.inventory}
    )
    target = state.inventory.get_host(target_name)
    if target.name == sources[0].name:
        raise CodebError(f"{target_name} is the app server itself")
    return sources[0], target


def _run(server: Host, cmd: StringCommand, what: str) -> list[str]:
    ok, output = server.run_shell_command(cmd)
    if not ok:
        said = [line for line in output.stderr_lines if line.strip()]
        raise RunFailed(f"on {server.name}: {what} failed{': ' + said[-1].strip() if said else ''}")
    return list(output.stdout_lines)


def _fact(state: Any, server: Host, fact: Any, **kwargs: Any) -> Any:
    with ctx_state.use(state), ctx_host.use(server):
        return server.get_fact(fact, **kwargs)


def _open(inventory: str, target_name: str, data: dict[str, Any] | None) -> tuple[Any, Host, Host]:
    """The inventory loaded and checked (a wrong target is refused before any connection), then
    SSH to the source and the target only."""
    state = runner._RunState(check_for_changes=True)
    state.cwd = os.getcwd()
    ctx_state.set(state)
    loaded = runner._load_inventory(inventory, state, data)
    ctx_inventory.set(loaded)
    state.init(loaded, Config())
    source, target = _hosts(state, target_name)
    state.limit_hosts = [source, target]
    state.print_output = False
    errors = runner._ConnectErrors()
    state.add_callback_handler(errors)
    state.add_callback_handler(transport.NoDelay())
    with contextlib.suppress(PyinfraError):
        connect_all(state)
    state.codeb_connect_errors = errors.errors
    return state, source, target


@contextmanager
def _connected(inventory: str, target_name: str, data: dict[str, Any] | None) -> Iterator[_Pair]:
    state, source, target = _open(inventory, target_name, data)
    try:
        if source not in state.active_hosts:
            raise RunFailed(f"cannot reach the source {source.name}: {state.codeb_connect_errors.get(source.name)}")
        error = None if target in state.active_hosts else state.codeb_connect_errors.get(target.name, "not connected")
        settings = HostSettings.from_data(source.data)
        dns = DnsSettings.from_data(source.data)
        target_dns = DnsSettings.from_data(target.data)
        projects = _fact(state, source, ProjectRegistry, registry_dir=settings.registry_dir)
        slots = _fact(state, source, SlotRegistry, registry_dir=settings.registry_dir)
        changes, originals = {}, {}
        for zone in dns.zones:
            live = _fact(state, source, PowerDnsZone, api=dns.api, zone=zone)
            changes[zone] = plan.address_changes(live, str(dns.public_address), str(target_dns.public_address))
            originals.update({r.name: r.contents for r in live.rrsets if r.rtype == "A"} if live else {})
        yield _Pair(
            state,
            source,
            target if error is None else None,
            error,
            settings,
            dns,
            projects,
            slots,
            changes,
            target.name,
            originals,
        )
    finally:
        disconnect_all(state)


# --- the step record ---------------------------------------------------------------------------


def _read_record(target: Host) -> MigrationRecord | None:
    lines = _run(target, file_commands.read_text(plan.RECORD_PATH, _MISSING), "reading the step record")
    if lines == [_MISSING] or not lines:
        return None
    try:
        return MigrationRecord.model_validate_json("\n".join(lines))
    except ValueError as error:
        raise RunFailed(f"on {target.name}: the step record {plan.RECORD_PATH} is unreadable: {error}") from None


def _write_record(target: Host, record: MigrationRecord) -> None:
    _run(target, commands.write_json(plan.RECORD_PATH, record.model_dump_json()), "writing the step record")


# --- preflight ---------------------------------------------------------------------------------


def _lower_commands(pair: _Pair) -> dict[str, str]:
    found = {}
    for zone, rrsets in pair.changes.items():
        for rrset in rrsets:
            original = rrset.model_copy(update={"contents": pair.originals[rrset.name]})
            cmd = pdns_commands.change_rrsets(pair.dns.api, zone, replace=[plan.lowered_ttl(original)])
            found[rrset.name] = f"ssh root@{pair.source.name} {cmd.get_raw_value()}"
    return found


def _image_bytes(pair: _Pair) -> int:
    images = plan.slot_images(pair.slots)
    if not images:
        return 0
    lines = _run(pair.source, commands.image_sizes(images), "reading the image sizes")
    return sum(int(line) for line in lines if line.strip().isdigit())


def preflight(pair: _Pair, now: datetime) -> list[Check]:
    checks = [plan.reach_check(pair.target_name, pair.target_error)]
    if pair.target is not None:
        free = _run(pair.target, commands.free_bytes("/var/lib/containers"), "reading the free disk")
        checks.append(
            plan.disk_check(
                pair.target.name,
                image_bytes=_image_bytes(pair),
                free_bytes=int(free[-1]) if free and free[-1].strip().isdigit() else None,
            )
        )
    lower = _lower_commands(pair)
    for rrsets in pair.changes.values():
        checks += plan.ttl_checks(rrsets, grace=pair.settings.grace, now=now, lower=lower)
    return checks


def _say_checks(checks: list[Check], say: Say) -> None:
    say(report(checks))


# --- the steps ---------------------------------------------------------------------------------


def _bootstrap(inventory: str, data: dict[str, Any] | None, target_name: str) -> None:
    from codeb_infra.roles.app import app
    from codeb_infra.roles.monitoring import monitoring
    from codeb_infra.roles.network import network, network_keys

    def keys() -> None:
        network_keys()

    def roles() -> None:
        from pyinfra import host

        network()  # every server: the target joins the mesh, the others learn it as a peer
        if host.name == target_name:
            app()
            monitoring()

    for phase in (keys, roles):
        result = runner.run_flow(inventory, phase, data=data, verbose=False, every_host=True)
        if not result.ok:
            raise RunFailed(f"bootstrapping {target_name} as an app server failed on {', '.join(result.failed_hosts)}")


def _state_paths(pair: _Pair) -> list[str]:
    s = pair.settings
    paths = [s.registry_dir, f"{s.codeb_dir}/env", f"{s.codeb_dir}/releases"]
    for project, envs in pair.projects.projects.items():
        for env in envs:
            paths.append(s.site_file(project, env))
    paths += plan.pointer_paths(pair.projects, s.upstreams_dir)
    paths += [f"/etc/containers/systemd/{c}.container" for c in plan.running_containers(pair.slots)]
    return paths


def _transfer(source: Host, target: Host, remote_src: str, remote_dest: str) -> None:
    """A file from the source to the target through this machine (a 0600 temporary file)."""
    handle, local = tempfile.mkstemp(prefix="codeb-migrate-")
    os.close(handle)
    try:
        if not source.get_file(remote_src, local):
            raise RunFailed(f"on {source.name}: could not fetch {remote_src}")
        if not target.put_file(local, remote_dest):
            raise RunFailed(f"on {target.name}: could not upload {remote_dest}")
    finally:
        os.unlink(local)
        source.run_shell_command(commands.remove(remote_src))


def _copy_state(pair: _Pair) -> None:
    assert pair.target is not None
    archive = "/var/tmp/codeb-migrate-app-state.tgz"
    _run(pair.source, commands.pack(archive, _state_paths(pair)), "packing the app state")
    _transfer(pair.source, pair.target, archive, archive)
    _run(pair.target, commands.unpack(archive), "unpacking the app state")


def _copy_images(pair: _Pair) -> None:
    assert pair.target is not None
    for index, image in enumerate(plan.slot_images(pair.slots)):
        archive = f"/var/tmp/codeb-migrate-image-{index}.tar"
        _run(pair.source, commands.save_image(image, archive), f"saving {image}")
        _transfer(pair.source, pair.target, archive, archive)
        _run(pair.target, commands.load_image(archive), f"loading {image}")


def _relay_address(pair: _Pair) -> str:
    assert pair.target is not None
    address = internal_address(pair.target)
    if address is None:
        raise CodebError(f"{pair.target.name} has no private address for the source to relay to")
    return address


def _start_slots(pair: _Pair) -> None:
    assert pair.target is not None
    s = HostSettings.from_data(pair.target.data)
    containers = plan.running_containers(pair.slots)
    if containers:
        _run(pair.target, commands.start_units(containers), "starting the slots")
    routes = plan.relay_routes(pair.projects, s.upstreams_dir, s.base_domain)
    site = f"{s.sites_dir}/{plan.RELAY_SITE}"
    _run(
        pair.target, commands.write_text(site, plan.relay_site(routes, _relay_address(pair))), "writing the relay site"
    )
    # No `caddy validate` first: run as root it would create the sites' log files root-owned.
    _run(pair.target, caddy_reload(s.caddy_bin, s.caddyfile), "reloading Caddy")


def _health(pair: _Pair, *, within: float = HEALTH_WAIT_SECONDS) -> None:
    """Every domain and preview domain through the target's Caddy (SNI and Host set), retried
    while Caddy issues the new names' certificates."""
    assert pair.target is not None
    s = HostSettings.from_data(pair.target.data)
    targets = plan.health_targets(pair.projects, pair.slots, s.base_domain)
    deadline = time.monotonic() + within
    while True:
        with ctx_state.use(pair.state), ctx_host.use(pair.target):
            found = pair.target.get_fact(
                HealthProbe,
                targets=targets,
                resolve=[],
                scheme="http" if s.tls == "off" else "https",
                port=80 if s.tls == "off" else 443,
                cafiles=[CADDY_LOCAL_ROOT, *([s.acme_ca_root] if s.acme_ca_root else [])],
                dns_server="127.0.0.1",
                dns_port=53,
            )
        failed = plan.unhealthy(found)
        if not failed:
            return
        if time.monotonic() > deadline:
            raise RunFailed(f"on {pair.target.name}: through its Caddy {'; '.join(failed)}; nothing was switched")
        time.sleep(1.0)


def _relay(pair: _Pair, record: MigrationRecord) -> MigrationRecord:
    """Point the source's pointers at the target's relay; what they held is kept for --abort."""
    s = HostSettings.from_data(pair.target.data) if pair.target else pair.settings
    routes = plan.relay_routes(pair.projects, pair.settings.upstreams_dir, s.base_domain)
    wanted = plan.relay_pointers(routes, _relay_address(pair))
    kept = dict(record.source_pointers)
    for path, address in wanted.items():
        current = _run(pair.source, file_commands.read_text(path, _MISSING), f"reading {path}")
        value = current[0].strip() if current else _MISSING
        if value != address and path not in kept and value != _MISSING:
            kept[path] = value
    record = record.model_copy(update={"source_pointers": kept})
    assert pair.target is not None
    _write_record(pair.target, record)  # what to put back is on the target before anything moves
    for path, address in wanted.items():
        _run(pair.source, write_pointer(path, address), f"pointing {path} at the target")
    return record


def _switch_dns(pair: _Pair, *, old: str, new: str) -> None:
    """One PowerDNS change per zone on the source (the zone's nameserver until the registrar's NS
    moves) and the same on the target's PowerDNS (the nameserver after it)."""
    assert pair.target is not None
    target_dns = DnsSettings.from_data(pair.target.data)
    for zone in pair.dns.zones:
        for server, api in ((pair.source, pair.dns.api), (pair.target, target_dns.api)):
            live = _fact(pair.state, server, PowerDnsZone, api=api, zone=zone)
            rrsets = plan.address_changes(live, old, new)
            if rrsets:
                _run(server, pdns_commands.change_rrsets(api, zone, replace=rrsets), f"switching {zone}")


def _copy_zone_records(pair: _Pair) -> None:
    """The source's address records of the projects onto the target's PowerDNS (as they are)."""
    assert pair.target is not None
    target_dns = DnsSettings.from_data(pair.target.data)
    for zone in pair.dns.zones:
        live = _fact(pair.state, pair.source, PowerDnsZone, api=pair.dns.api, zone=zone)
        if live is None:
            continue
        rrsets = [r for r in live.rrsets if r.rtype in ("A", "AAAA", "CNAME", "TXT") and r.owner]
        if rrsets:
            _run(pair.target, pdns_commands.change_rrsets(target_dns.api, zone, replace=rrsets), f"copying {zone}")


def source_traffic(pair: _Pair, since: datetime) -> tuple[int, float | None]:
    total, last = 0, None
    for project, envs in pair.projects.projects.items():
        for env in envs:
            lines = _run(
                pair.source, commands.log_tail(pair.settings.access_log(project, env)), "reading the access log"
            )
            count, newest = plan.requests_since(lines, since)
            total += count
            last = newest if last is None or (newest is not None and newest > last) else last
    return total, last


# --- entry points ------------------------------------------------------------------------------


def dry_run(inventory: str, target_name: str, *, data: dict[str, Any] | None = None, say: Say = print) -> int:
    """Print each preflight check and what must change outside; change nothing. 0 or 1."""
    with _connected(inventory, target_name, data) as pair:
        checks = preflight(pair, datetime.now(UTC))
        _say_checks(checks, say)
        target_address = str(DnsSettings.from_data(pair.state.inventory.get_host(target_name).data).public_address)
        for line in plan.outside_changes(pair.dns.zones, pair.dns.nameservers, target_address):
            say(f"outside: {line}")
        return exit_code(checks)


def migrate(inventory: str, target_name: str, *, data: dict[str, Any] | None = None, say: Say = print) -> int:
    """Run (or continue) the move; 0 once the target serves every domain and DNS names it."""
    now = datetime.now(UTC)
    with _connected(inventory, target_name, data) as pair:
        record = _read_record(pair.target) if pair.target else None
        if record is None or Step.DNS not in record.done:
            checks = preflight(pair, now)
            _say_checks(checks, say)
            if exit_code(checks):
                raise RunFailed("a preflight check failed (above); nothing was changed")
    _bootstrap_if_needed(inventory, target_name, data, say)
    with _connected(inventory, target_name, data) as pair:
        if pair.target is None:
            raise RunFailed(f"cannot reach {target_name}: {pair.target_error}")
        record = plan.start_record(
            _read_record(pair.target),
            source=pair.source.name,
            target=pair.target.name,
            source_address=pair.source_address,
            target_address=pair.target_address,
            now=now,
        )
        record = record.with_step(Step.BOOTSTRAP)
        _write_record(pair.target, record)
        for step in plan.remaining_steps(record):
            say(f"step {step.value}")
            record = _apply(pair, record, step)
            _write_record(pair.target, record)
        count, last = source_traffic(pair, record.dns_switched_at or now)
        say(
            f"done: {pair.target.name} serves every domain; the source relays to it until"
            f" {record.grace_until.isoformat() if record.grace_until else '?'}"
        )
        say(
            f"requests still arriving at the source since the DNS switch: {count}"
            + (f" (last at {datetime.fromtimestamp(last, UTC).isoformat()})" if last else "")
        )
        for line in plan.outside_changes(pair.dns.zones, pair.dns.nameservers, pair.target_address):
            say(f"outside: {line}")
        say(f"then move {pair.target.name} into group `app` of the inventory (and {pair.source.name} out of it)")
    return 0


def _bootstrap_if_needed(inventory: str, target_name: str, data: dict[str, Any] | None, say: Say) -> None:
    with _connected(inventory, target_name, data) as pair:
        if pair.target is None:
            raise RunFailed(f"cannot reach {target_name}: {pair.target_error}")
        record = _read_record(pair.target)
        if record is not None and record.aborted_at is None and Step.BOOTSTRAP in record.done:
            return
    say("step bootstrap")
    _bootstrap(inventory, data, target_name)


def _apply(pair: _Pair, record: MigrationRecord, step: Step) -> MigrationRecord:
    if step is Step.STATE:
        _copy_state(pair)
    elif step is Step.IMAGES:
        _copy_images(pair)
    elif step is Step.SLOTS:
        _start_slots(pair)
        _copy_zone_records(pair)
    elif step is Step.HEALTH:
        _health(pair)
    elif step is Step.RELAY:
        record = _relay(pair, record)
    elif step is Step.DNS:
        _switch_dns(pair, old=record.source_address, new=record.target_address)
        switched = datetime.now(UTC)
        return record.with_step(step, dns_switched_at=switched, grace_until=switched + pair.settings.grace)
    return record.with_step(step)


def abort(inventory: str, target_name: str, *, data: dict[str, Any] | None = None, say: Say = print) -> int:
    """Within the grace period: DNS back to the source and the source's pointers back to its own
    slots (which kept running); the target keeps its copy until it is migrated again."""
    with _connected(inventory, target_name, data) as pair:
        if pair.target is None:
            raise RunFailed(f"cannot reach {target_name}: {pair.target_error}")
        now = datetime.now(UTC)
        record = plan.abort_allowed(_read_record(pair.target), now)
        _switch_dns(pair, old=record.target_address, new=record.source_address)
        say("DNS names the source again")
        for path, address in sorted(record.source_pointers.items()):
            _run(pair.source, write_pointer(path, address), f"pointing {path} back at the source's slot")
        say(f"{pair.source.name}'s Caddy serves from its own slots again")
        _write_record(pair.target, record.model_copy(update={"aborted_at": now}))
    return 0


def run(
    inventory: str, target_name: str, *, dry: bool, undo: bool, data: dict[str, Any] | None = None, say: Say = print
) -> int:
    if dry:
        return dry_run(inventory, target_name, data=data, say=say)
    if undo:
        return abort(inventory, target_name, data=data, say=say)
    return migrate(inventory, target_name, data=data, say=say)
