"""Centrifugo on the streaming server: one container run by systemd."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import files, systemd

from codeb_infra.config.roles import CENTRIFUGO_CONTAINER_CONFIG
from codeb_infra.domain.names import is_local_image
from codeb_infra.facts.files import TextFile
from codeb_infra.facts.podman import SlotRunner
from codeb_infra.operations import Commands
from codeb_infra.templates import render

UNIT = "centrifugo.service"
QUADLET_FILE = "/etc/containers/systemd/centrifugo.container"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"


@operation()
def container(*, image: str, config: str, env_file: str, publish: list[str], restart: bool = False) -> Commands:
    """
    Centrifugo as a systemd unit, started at boot: a Quadlet ``.container`` file where podman has
    Quadlet (>= 4.4), else a unit that runs ``podman run``. ``localhost/`` images are never pulled.

    + image: Centrifugo image, e.g. ``docker.io/centrifugo/centrifugo:v5``
    + config: Centrifugo's config file on the server (no secrets; mounted read-only)
    + env_file: root-only env file with Centrifugo's secrets (``CENTRIFUGO_*``), read by podman
    + publish: ``address:port:container_port`` each, e.g. the client port on loopback and the
      internal port on the server's private address
    + restart: restart even when the unit is unchanged (its config or secrets changed)

    **Example:**

    .. code:: python

        centrifugo.container(image="docker.io/centrifugo/centrifugo:v5",
            config="/etc/codeb/centrifugo/config.json", env_file="/etc/codeb/secrets/centrifugo.env",
            publish=["127.0.0.1:8000:8000", "10.0.0.3:9000:9000"])
    """
    quadlet = host.get_fact(SlotRunner) == "quadlet"
    values = {
        "image": image,
        "config": config,
        "env_file": env_file,
        "publish": list(publish),
        "container_config": CENTRIFUGO_CONTAINER_CONFIG,
        "pull": "never" if is_local_image(image) else "missing",
    }
    path, content = (
        (QUADLET_FILE, render("centrifugo.container.j2", **values))
        if quadlet
        else (UNIT_FILE, render("centrifugo.service.j2", **values))
    )
    unchanged = host.get_fact(TextFile, path=path) == content.rstrip("\n")
    if not unchanged:
        yield from files.put._inner(src=StringIO(content), dest=path, user="root", group="root", mode="644")
    yield from systemd.service._inner(
        service=UNIT,
        running=True,
        restarted=restart or not unchanged,
        daemon_reload=not unchanged,
        # A Quadlet unit is generated from its [Install] section at boot; it cannot be enabled.
        enabled=None if quadlet else True,
    )
