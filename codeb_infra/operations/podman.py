"""Slot containers and their network."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from codeb_infra.commands import podman as podman_commands
from codeb_infra.domain.names import is_local_image
from codeb_infra.facts.podman import SPEC_LABEL, CodebContainers, PodmanNetworks


@operation()
def network(network: str = "codeb-main"):
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
    env_file: str | None = None,
):
    """
    Run a slot's container, replacing it only when what it should run (``spec``) differs.

    + project, env, slot: identify the slot (container ``{project}-{env}-{slot}``, codeb.* labels)
    + image: image reference; ``localhost/`` images are never pulled
    + host_port: published on 127.0.0.1 of the server
    + container_port: the port the app listens on inside the container
    + network: podman network to join
    + spec: digest of the release; stored as a label to detect change
    + env_file: path of the project's env file on the server, if it exists

    **Example:**

    .. code:: python

        podman.slot_container(project="myapp", env="production", slot="green",
            image="localhost/myapp:v2", host_port=4051, container_port=3000,
            network="codeb-main", spec="3f2a...")
    """
    container = f"{project}-{env}-{slot}"
    current = next((c for c in host.get_fact(CodebContainers, project=project, env=env) if c.name == container), None)
    if current is not None and current.spec == spec:
        if current.running:
            host.noop(f"{container} already runs {image}")
            return
        yield podman_commands.start(container)
        return
    yield podman_commands.remove(container)
    yield podman_commands.run(
        container=container,
        image=image,
        labels={
            "codeb.project": project,
            "codeb.environment": env,
            "codeb.slot": slot,
            SPEC_LABEL: spec,
        },
        network=network,
        host_port=host_port,
        container_port=container_port,
        env_file=env_file,
        pull="never" if is_local_image(image) else "newer",
    )


@operation()
def slot_removed(*, project: str, env: str, slot: str):
    """
    Remove a slot's container if it exists.

    **Example:**

    .. code:: python

        podman.slot_removed(project="myapp", env="production", slot="blue")
    """
    container = f"{project}-{env}-{slot}"
    if not any(c.name == container for c in host.get_fact(CodebContainers, project=project, env=env)):
        host.noop(f"{container} does not exist")
        return
    yield podman_commands.remove(container)
