"""Slot containers and their network."""

from __future__ import annotations

from collections.abc import Sequence
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import files

from codeb_infra.commands import files as file_commands
from codeb_infra.commands import podman as podman_commands
from codeb_infra.commands import systemd as systemd_commands
from codeb_infra.domain.names import is_local_image
from codeb_infra.facts.files import TextFile
from codeb_infra.facts.podman import (
    ENV_LABEL,
    SPEC_LABEL,
    CodebContainers,
    Container,
    ImageId,
    PodmanNetworks,
)
from codeb_infra.operations import Commands
from codeb_infra.templates import render

QUADLET_DIR = "/etc/containers/systemd"


def unit_file(container: str) -> str:
    return f"{QUADLET_DIR}/{container}.container"


def slot_labels(*, project: str, env: str, slot: str, spec: str, env_digest: str) -> dict[str, str]:
    """The labels a slot's container carries: who it is, and what it runs (to detect a change)."""
    labels = {"codeb.project": project, "codeb.environment": env, "codeb.slot": slot, SPEC_LABEL: spec}
    if env_digest:
        labels[ENV_LABEL] = env_digest
    return labels


def slot_pull(image: str) -> str:
    """``localhost/`` images are never pulled; others when the registry has a newer one."""
    return "never" if is_local_image(image) else "newer"


def slot_unit(container: str, **unit: Any) -> str:
    """A slot's Quadlet ``.container`` file."""
    return render("slot.container.j2", container=container, **unit)


@operation()
def network(network: str = "codeb-main") -> Commands:
    """
    Ensure a podman network exists.

    + network: network name

    **Example:**

    .. code:: python

        podman.network(network="codeb-main")
    """
    if network in host.get_fact(PodmanNetworks):
        host.noop(f"network {network} exists")
        return
    yield podman_commands.network_create(network)


@operation()
def slot_container(
    *,
    project: str,
    env: str,
    slot: str,
    image: str,
    host_port: int,
    container_port: int,
    network: str,
    spec: str,
    env_files: Sequence[str] = (),
    env_digest: str = "",
    runner: str = "podman",
) -> Commands:
    """
    Run a slot's container, replacing it only when what it should run (``spec``) differs.

    With ``runner="quadlet"`` the container is a systemd unit (a Quadlet ``.container`` file,
    started at boot); with ``runner="podman"`` it is a plain ``podman run --restart always``.

    + project, env, slot: identify the slot (container ``{project}-{env}-{slot}``, codeb.* labels)
    + image: image reference; ``localhost/`` images are never pulled
    + host_port: published on 127.0.0.1 of the server
    + container_port: the port the app listens on inside the container
    + network: podman network to join
    + spec: digest of the release; stored as a label to detect change
    + env_files: env files on the server, in order (a later file wins): the environment's env
      file, then the project's master env holding its database and Redis credentials
    + env_digest: digest of those files; a changed env file replaces the container too
    + runner: ``quadlet`` or ``podman``

    **Example:**

    .. code:: python

        podman.slot_container(project="myapp", env="production", slot="green",
            image="localhost/myapp:v2", host_port=4051, container_port=3000,
            network="codeb-main", spec="3f2a...")
    """
    container = f"{project}-{env}-{slot}"
    current = next((c for c in host.get_fact(CodebContainers, project=project, env=env) if c.name == container), None)
    labels = slot_labels(project=project, env=env, slot=slot, spec=spec, env_digest=env_digest)
    current_matches = current is not None and current.spec == spec and current.env_digest == env_digest
    pull = slot_pull(image)
    if runner == "quadlet":
        yield from _quadlet_slot(
            container,
            current,
            current_matches,
            labels=labels,
            image=image,
            network=network,
            host_port=host_port,
            container_port=container_port,
            env_files=tuple(env_files),
            pull=pull,
        )
        return
    if current is not None and current_matches:
        if current.running:
            host.noop(f"{container} already runs {image}")
            return
        yield podman_commands.start(container)
        return
    yield podman_commands.remove(container)
    yield podman_commands.run(
        container=container,
        image=image,
        labels=labels,
        network=network,
        host_port=host_port,
        container_port=container_port,
        env_files=tuple(env_files),
        pull=pull,
    )


def _quadlet_slot(container: str, current: Container | None, current_matches: bool, **unit: Any) -> Commands:
    path = unit_file(container)
    content = slot_unit(container, **unit)
    unchanged = host.get_fact(TextFile, path=path) == content.rstrip("\n")
    if unchanged and current is not None and current_matches and current.running:
        host.noop(f"{container} already runs {unit['image']}")
        return
    if not unchanged:
        yield from files.put._inner(src=StringIO(content), dest=path, mode="644")
        yield systemd_commands.daemon_reload()
    # A release that crash-looped in this slot leaves its unit refusing starts for a while
    # ("start request repeated too quickly"): the next deploy must not inherit that.
    yield systemd_commands.reset_failed(f"{container}.service")
    yield systemd_commands.restart(f"{container}.service")


@operation()
def slot_removed(*, project: str, env: str, slot: str) -> Commands:
    """
    Remove a slot's container (and its Quadlet unit, if it has one) if it exists.

    **Example:**

    .. code:: python

        podman.slot_removed(project="myapp", env="production", slot="blue")
    """
    container = f"{project}-{env}-{slot}"
    has_unit = host.get_fact(TextFile, path=unit_file(container)) is not None
    if not has_unit and not any(c.name == container for c in host.get_fact(CodebContainers, project=project, env=env)):
        host.noop(f"{container} does not exist")
        return
    if has_unit:
        yield systemd_commands.stop(f"{container}.service")
        yield systemd_commands.reset_failed(f"{container}.service")  # no failed unit left listed
        yield file_commands.remove_files(unit_file(container))
        yield systemd_commands.daemon_reload()
    yield podman_commands.remove(container)


@operation()
def image_copied(*, image: str, image_id: str, archive: str) -> Commands:
    """
    Load a controller-side image archive into the server's podman store, unless the same image
    (by ID) is already there.

    + image: the reference the archive holds
    + image_id: its ID on the controller
    + archive: path of the archive on the controller (``podman save`` output)

    **Example:**

    .. code:: python

        podman.image_copied(image="localhost/app:v2", image_id="3f2a...", archive="/tmp/app.tar")
    """
    if (host.get_fact(ImageId, image=image) or "").removeprefix("sha256:") == image_id:
        host.noop(f"{image} is already on the server")
        return
    remote = f"/var/tmp/codeb-image-{image_id[:16]}.tar"
    yield from files.put._inner(src=archive, dest=remote, mode="600")
    yield podman_commands.load(remote)
    yield file_commands.remove_files(remote)
