"""`up`, `down` and `status` of the local sandbox: four Debian servers with systemd and sshd, and
the spare servers asked for with `up(spares=...)`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from docker.errors import APIError
from docker.models.containers import Container

from .engine import Engine, connect
from .image import ImageRecipe, ensure_image
from .inventory import local_artifacts, render_inventory
from .model import (
    STATE_DIR_LABEL,
    SandboxError,
    SandboxInfo,
    ServerInfo,
    base_role,
    container_name,
    network_name,
    server_names,
    spare_name,
    spare_role,
)
from .servers import (
    create_server,
    ensure_network,
    find_containers,
    free_ports,
    published_ports,
    remove_all,
    server_info,
    ssh_answers,
    wait_until_booted,
)
from .state import StatePaths, ensure_key, remove_files, resolve_state_dir, write_text

Echo = Callable[[str], None]


def up(state_dir: Path | None = None, *, spares: Sequence[str] = (), echo: Echo = print) -> SandboxInfo:
    """Create and start whatever part of the sandbox is missing, then write its inventory.

    `spares` adds a spare server per role (`storage-target`, ...) for a migration to move that
    role to; spares made before are kept. On a sandbox that already runs this changes nothing and
    says so (`changed` is False).
    """
    for role in spares:
        spare_name(role)  # an unknown role is refused before anything is made
    paths = StatePaths(resolve_state_dir(state_dir))
    with connect(echo) as engine:
        containers = find_containers(engine)
        names = server_names([*spares, *(r for r in map(spare_role, containers) if r)])
        _check_owner(containers, paths)
        if containers and not paths.key.exists():
            raise SandboxError(
                f"The sandbox runs but its key {paths.key} is gone; run `codeb sandbox down`, then `codeb sandbox up`."
            )
        changed = ensure_key(paths)
        booting = _create_missing(engine, containers, names, paths, echo)
        for role, container in containers.items():
            if role in names and role not in booting and container.status != "running":
                echo(f"Starting {container.name}")
                container.start()
                booting.append(role)
        booting += _revive_unreachable(engine, containers, names, booting, paths, echo)
        for role in booting:
            container = containers[role]
            container.reload()
            verdict = wait_until_booted(container, server_info(container).ssh_port or 0)
            if verdict != "running":
                echo(f"Warning: {container.name} booted {verdict}")
        for container in containers.values():
            container.reload()
        servers = {role: server_info(containers[role]) for role in names}
    changed = bool(booting) or changed
    inventory = render_inventory(servers, paths.key, local_artifacts(paths.root))
    changed = write_text(paths.inventory, inventory) or changed
    info = _info(paths, servers, changed=changed)
    if not changed:
        echo("The sandbox is already up; nothing changed.")
    echo(info.describe())
    echo(info.usage)
    return info


def down(state_dir: Path | None = None, *, echo: Echo = print) -> list[str]:
    """Remove the sandbox's containers and network, and the key and inventory `up` wrote.

    Returns the names of the removed containers and network and the paths of the removed files.
    """
    with connect(echo) as engine:
        containers = find_containers(engine)
        removed = remove_all(engine)
    for root in _state_dirs(containers) or [resolve_state_dir(state_dir)]:
        removed += remove_files(StatePaths(root))
    echo("Removed: " + ", ".join(removed) if removed else "No sandbox to remove.")
    return removed


def status(state_dir: Path | None = None, *, echo: Echo = print) -> SandboxInfo | None:
    """The sandbox as the engine sees it, or None when none of its servers exists."""
    with connect(echo) as engine:
        containers = find_containers(engine)
    if not containers:
        return None
    labelled = _state_dirs(containers)
    paths = StatePaths(labelled[0] if labelled else resolve_state_dir(state_dir))
    names = server_names([r for r in map(spare_role, containers) if r])
    servers = {role: server_info(c) for role, c in containers.items() if role in names}
    return _info(paths, servers, changed=False)


def _create_missing(
    engine: Engine, containers: dict[str, Container], names: Sequence[str], paths: StatePaths, echo: Echo
) -> list[str]:
    missing = [role for role in names if role not in containers]
    if not missing:
        return []
    images = {role: ensure_image(engine, ImageRecipe.for_role(base_role(role)), echo) for role in missing}
    ensure_network(engine)
    taken = published_ports(engine) | {port for port in (server_info(c).ssh_port for c in containers.values()) if port}
    public_key = paths.public_key.read_text()
    for role, port in zip(missing, free_ports(len(missing), taken), strict=True):
        echo(f"Creating {container_name(role)}, SSH on 127.0.0.1:{port}")
        containers[role] = create_server(
            engine,
            role=role,
            image=images[role],
            ssh_port=port,
            public_key=public_key,
            state_dir=paths.root,
        )
    return missing


def _revive_unreachable(
    engine: Engine,
    containers: dict[str, Container],
    names: Sequence[str],
    booting: list[str],
    paths: StatePaths,
    echo: Echo,
) -> list[str]:
    """Restart each server the engine calls running but whose sshd does not answer, and make it anew
    when it cannot be restarted.

    The engine's record can outlive the processes it describes: a machine restored from a disk image,
    or rebooted with /run on disk, lists servers as running that nothing runs.
    """
    revived: list[str] = []
    for role in names:
        container = containers[role]
        port = server_info(container).ssh_port
        if role in booting or (port and ssh_answers(port)):
            continue
        echo(f"{container.name} is listed as running but its SSH does not answer; restarting it")
        try:
            container.restart(timeout=10)
        except APIError:
            # Stopping what no process runs fails once, and leaves the record stopped: start it then.
            try:
                container.start()
            except APIError as error:
                echo(f"{container.name} does not start ({error.explanation or error}); making it anew")
                container.remove(force=True)
                del containers[role]
                _create_missing(engine, containers, names, paths, echo)
        revived.append(role)
    return revived


def _state_dirs(containers: Mapping[str, Container]) -> list[Path]:
    """The state directories the sandbox's containers were made with (normally one)."""
    labels = (c.labels.get(STATE_DIR_LABEL) for c in containers.values())
    return sorted({Path(label) for label in labels if label})


def _check_owner(containers: Mapping[str, Container], paths: StatePaths) -> None:
    for container in containers.values():
        owner = container.labels.get(STATE_DIR_LABEL)
        if owner and Path(owner) != paths.root:
            raise SandboxError(
                f"A sandbox made with state directory {owner} already runs on this engine; "
                f"use that directory, or run `codeb sandbox down` first."
            )


def _info(paths: StatePaths, servers: dict[str, ServerInfo], *, changed: bool) -> SandboxInfo:
    return SandboxInfo(
        state_dir=paths.root,
        inventory=paths.inventory,
        ssh_key=paths.key,
        network=network_name(),
        servers=servers,
        changed=changed,
    )
