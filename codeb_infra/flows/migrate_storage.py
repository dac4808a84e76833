"""`codeb migrate storage --to HOST`: move PostgreSQL and Redis to the target by replication.

Read (facts of source and target) -> decide (domain.migrate_storage) -> apply, one step at a time,
each recorded on the target (/opt/codeb/migration/storage.json) so a re-run continues:
prepare (secrets copied, target bootstrapped as storage) -> standby (pg_basebackup over the mesh,
streaming until the lag is 0 bytes; Redis REPLICAOF) -> fence (source read-only, its sessions
ended) -> promote (target replayed the source's last LSN; pg_promote; Redis FAILOVER without
FORCE) -> repoint (every project's master env composed on the target with its address and pushed
to the app server, where a connection made from then on reaches the target). The source stays
fenced (PostgreSQL read-only, Redis the target's replica) for the grace period."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyinfra import host
from pyinfra.api import Host, State, StringCommand

from codeb_infra.commands import master_env as env_commands
from codeb_infra.commands import replication as commands
from codeb_infra.config.app import HostSettings
from codeb_infra.config.roles import StorageSettings
from codeb_infra.controller import runner
from codeb_infra.domain import migrate as shared
from codeb_infra.domain import migrate_storage as domain
from codeb_infra.domain.data import ProjectData
from codeb_infra.domain.errors import CodebError, RunFailed
from codeb_infra.domain.migrate_storage import Record, Step
from codeb_infra.roles.network import internal_address

Echo = Callable[[str], None]
SYNC_TIMEOUT = 120.0
CATCH_UP_TIMEOUT = 30.0
POLL = 0.1


@dataclass
class Servers:
    state: State
    source: Host
    target: Host
    source_address: str
    target_address: str
    settings: StorageSettings
    measured: dict[str, float] = field(default_factory=dict)


def _sh(server: Host, cmd: StringCommand, what: str) -> str:
    ok, output = server.run_shell_command(cmd)
    if not ok:
        raise RunFailed(f"{server.name}: {what} failed: {output.stderr.strip()[-300:]}")
    return str(output.stdout)


def _servers(state: State, target: str) -> Servers:
    inventory = state.inventory
    hosts = {h.name: dict(h.data.dict()) for h in inventory}
    shared.check_target("storage", target, hosts)
    sources = inventory.get_group("storage", default=[])
    if len(sources) != 1:
        raise CodebError("the inventory needs exactly one storage server (group `storage`) to move from")
    source, goal = sources[0], inventory.get_host(target)
    source_address, target_address = internal_address(source), internal_address(goal)
    if not source_address or not target_address:
        raise CodebError("source and target need an internal address (mesh or private_address)")
    return Servers(state, source, goal, source_address, target_address, StorageSettings.from_data(source.data))


def checks(inventory: str, target: str) -> list[shared.Check]:
    """The preflight (`--dry-run`): reads only, changes nothing on either server. A target that
    does not answer over SSH is the one failed check, with the connection's error."""
    with runner.connected(inventory, optional=(target,)) as state:
        servers = _servers(state, target)
        if servers.target not in state.active_hosts:
            reason = state.codeb_connect_errors.get(target, "not connected")
            return [domain.reach_check(domain.TargetFacts(reachable=False, reason=reason))]
        source = domain.PostgresFacts.parse(_sh(servers.source, commands.postgres_facts(), "reading PostgreSQL"))
        ok, out = servers.target.run_shell_command(
            commands.installable_postgres_major(servers.settings.postgres_version)
        )
        candidate = out.stdout.strip() if ok else ""
        free = _sh(servers.target, commands.free_disk(), "reading free disk").strip()
        target_facts = domain.TargetFacts(reachable=True, postgres_candidate=candidate, free_bytes=int(free or 0))
        hba = _sh(servers.source, commands.hba_allows_replication(servers.target_address), "reading pg_hba")
        source_redis = _sh(servers.source, commands.redis_version(), "reading the Redis version")
        ok, out = servers.target.run_shell_command(commands.redis_version())
        target_redis = out.stdout if ok else ""
        if not target_redis:
            ok, out = servers.target.run_shell_command(commands.redis_candidate())
            target_redis = f"v={out.stdout.strip()}" if ok else ""
        return domain.preflight(
            source=source,
            source_redis=source_redis,
            target=target_facts,
            target_redis=target_redis,
            hba_rows=len(hba.split()),
            wanted_major=servers.settings.postgres_version,
        )


def migrate(inventory: str, target: str, *, echo: Echo = print) -> Record:
    """Run (or continue) the migration; returns the final record with the measured figures printed."""
    with runner.connected(inventory) as state:
        servers = _servers(state, target)
        path = shared.record_path("storage")
        found = Record.parse(_sh(servers.target, commands.record_read(path), "reading the migration record"))
        record = domain.resume_from(
            found,
            source=servers.source.name,
            source_address=servers.source_address,
            target_address=servers.target_address,
            now=time.time(),
        )
        if found is None:
            _save(servers, record)
    # Bootstrap runs through pyinfra's own deploy machinery (its own connections).
    if record.step < Step.PREPARED:
        echo("prepare: copying the storage secrets to the target and bootstrapping it as storage")
        with runner.connected(inventory) as state:
            servers = _servers(state, target)
            _copy_secrets(servers)
        for phase in (_bootstrap_target, _target_backup_access):
            result = runner.run_flow(inventory, phase, target, every_host=True, verbose=False)
            if not result.ok:
                raise RunFailed(f"bootstrapping {target} as storage failed on {', '.join(result.failed_hosts)}")
        record = _advance(inventory, target, record, Step.PREPARED)
    with runner.connected(inventory) as state:
        servers = _servers(state, target)
        if record.step < Step.STANDBY:
            echo("standby: base backup over the mesh, streaming replication, Redis REPLICAOF")
            _standby(servers)
            _compose_envs(servers)
            record = _save(servers, record.done(Step.STANDBY, time.time()))
        fenced_at = time.monotonic()
        if record.step < Step.FENCED:
            _sh(servers.source, commands.fence(on=True), "fencing the source")
            record = _save(servers, record.done(Step.FENCED, time.time()))
            echo("fence: the source refuses writes")
        if record.step < Step.PROMOTED:
            try:
                _promote(servers, echo)
            except CodebError:
                if _unfence_unless_promoted(servers, echo):
                    _save(servers, record.model_copy(update={"step": Step.STANDBY}))
                raise
            record = _save(servers, record.done(Step.PROMOTED, time.time()))
        if record.step < Step.REPOINTED:
            projects = _repoint(servers)
            echo(f"repoint: {len(projects)} master env(s) name {record.target_address}")
            echo(f"switch: fence to repoint {time.monotonic() - fenced_at:.1f}s")
            record = _save(servers, record.done(Step.REPOINTED, time.time()))
    if record.step < Step.DONE:
        record = _advance(inventory, target, record, Step.DONE)
    echo(f"done: storage runs on {target}; the source stays fenced until {time.ctime(record.grace_until)}")
    return record


def _advance(inventory: str, target: str, record: Record, step: Step) -> Record:
    with runner.connected(inventory) as state:
        return _save(_servers(state, target), record.done(step, time.time()))


def _save(servers: Servers, record: Record) -> Record:
    _sh(servers.target, commands.record_write(shared.record_path("storage"), record.text()), "writing the record")
    return record


def _copy_secrets(servers: Servers) -> None:
    """The storage role's root-only files, source -> controller memory -> target (SFTP both ways)."""
    _sh(servers.source, commands.secrets_archive(), "packing the secrets")
    buffer = io.BytesIO()
    if not servers.source.get_file(commands.SECRETS_TAR, buffer):
        raise RunFailed(f"{servers.source.name}: could not read the secrets archive")
    _sh(servers.source, commands.remove_secrets_archive(), "removing the secrets archive")
    buffer.seek(0)
    if not servers.target.put_file(buffer, commands.SECRETS_TAR):
        raise RunFailed(f"{servers.target.name}: could not write the secrets archive")
    _sh(servers.target, commands.unpack_secrets(), "unpacking the secrets")


def _bootstrap_target(target: str) -> None:
    """The storage role on the target alone (a deploy run on every host; the others do nothing)."""
    from codeb_infra.roles.network import network
    from codeb_infra.roles.storage import storage

    if host.name != target:
        return
    network()
    storage()


def _compose_envs(servers: Servers) -> None:
    """Each project's master env composed on the target with the target's address (copied
    secrets, same passwords); no app reads it before `_repoint` pushes it."""
    for project in _projects(servers):
        data = ProjectData.of(project)
        _sh(servers.target, env_commands.write(data, servers.target_address), f"composing the master env of {project}")


def _target_backup_access(target: str) -> None:
    """The target's key authorized on the backup server (its WAL archive and dumps go on from it);
    a phase of its own: the key is made on the target before the backup server reads it."""
    from codeb_infra.roles.backup import backup_access

    backup_access(migration_target=target)


def _repoint(servers: Servers) -> list[str]:
    """Every project's master env from the target to each app server (through the controller's
    memory, as provisioning pushes it): a connection the app makes from then on reaches the target.
    Runs on the connections already open, so the switch takes no reconnect."""
    projects = _projects(servers)
    apps = servers.state.inventory.get_group("app", default=[])
    for project in projects:
        data = ProjectData.of(project)
        buffer = io.BytesIO()
        if not servers.target.get_file(data.master_env_on_storage, buffer):
            raise RunFailed(f"{servers.target.name}: could not read the master env of {project}")
        for app in apps:
            path = HostSettings.from_data(app.data).master_env_file(project)
            buffer.seek(0)
            _sh(app, env_commands.prepare_copy(path), f"preparing {path}")
            if not app.put_file(buffer, f"{path}.new"):
                raise RunFailed(f"{app.name}: could not write {path}")
            _sh(app, env_commands.finish_copy(path), f"installing {path}")
    return projects


def _projects(servers: Servers) -> list[str]:
    listing = _sh(servers.target, commands.list_master_envs(), "listing the master envs")
    return sorted(line.removesuffix(".env") for line in listing.split() if line.endswith(".env"))


def _wait(what: str, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RunFailed(f"{what} not reached within {timeout:.0f}s")
        time.sleep(POLL)


def _standby(servers: Servers) -> None:
    version = servers.settings.postgres_version
    data_dir = f"/var/lib/postgresql/{version}/main"
    _sh(servers.target, commands.passfile(servers.source_address), "writing the replication passfile")
    _sh(
        servers.target,
        commands.base_backup(
            source=servers.source_address, version=version, data_dir=data_dir, unit=servers.settings.postgres_unit
        ),
        "the base backup",
    )

    def zero_lag() -> bool:
        _, lag = _sh(servers.source, commands.source_lag(), "reading the lag").strip().split("|")
        return lag.strip() == "0"

    _wait("replication lag 0 bytes", zero_lag, SYNC_TIMEOUT)
    _sh(servers.target, commands.redis_follow(servers.source_address), "Redis REPLICAOF")
    _wait(
        "Redis replica in sync",
        lambda: domain.redis_in_sync(_sh(servers.target, commands.redis_info(), "Redis INFO")),
        SYNC_TIMEOUT,
    )


def _unfence_unless_promoted(servers: Servers, echo: Echo) -> bool:
    """A promotion that did not happen must not leave the source refusing writes: while the target
    is still a standby (and Redis still follows the source), lift the fence; a re-run fences again."""
    standby = _sh(servers.target, commands.standby_state(), "reading the standby").strip().split("|")
    redis = domain.redis_role(_sh(servers.target, commands.redis_info(), "Redis INFO"))
    if standby[0] == "t" and redis != "master":
        _sh(servers.source, commands.fence(on=False), "lifting the fence")
        echo("promote failed: the source accepts writes again; run the migration again to retry")
        return True
    return False


def _promote(servers: Servers, echo: Echo) -> None:
    version = servers.settings.postgres_version
    standby = _sh(servers.target, commands.standby_state(), "reading the standby").strip().split("|")
    if standby[0] == "t":
        source_lsn, lag = _sh(servers.source, commands.source_lag(), "reading the source's LSN").strip().split("|")

        def replayed() -> bool:
            state = _sh(servers.target, commands.standby_state(), "reading the standby").strip().split("|")
            return domain.caught_up(source_lsn, state[1])

        _wait(f"replay of the source's last LSN {source_lsn}", replayed, CATCH_UP_TIMEOUT)
        lag_now = _sh(servers.source, commands.source_lag(), "reading the lag").strip().split("|")[1]
        echo(f"promote: standby replayed {source_lsn}; lag at promote {lag_now or '?'} bytes")
        _sh(
            servers.target,
            commands.promote(version=version, data_dir=f"/var/lib/postgresql/{version}/main"),
            "promoting",
        )
    if domain.redis_role(_sh(servers.target, commands.redis_info(), "Redis INFO")) != "master":
        _sh(servers.source, commands.redis_failover(servers.target_address), "Redis FAILOVER")
        _wait(
            "Redis primary on the target",
            lambda: domain.redis_role(_sh(servers.target, commands.redis_info(), "Redis INFO")) == "master",
            CATCH_UP_TIMEOUT,
        )
    echo("promote: the target is the PostgreSQL and Redis primary")
