"""The streaming server: Centrifugo in a podman container run by systemd, published on the private
address; its secrets are made on the server, in a root-only env file."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files

from codeb_infra.config.roles import (
    CENTRIFUGO_CONFIG,
    CENTRIFUGO_SECRET_KEYS,
    CENTRIFUGO_SECRETS,
    StreamingSettings,
    centrifugo_config,
)
from codeb_infra.controller import images
from codeb_infra.operations import centrifugo, podman, secrets
from codeb_infra.roles.network import internal_data


@deploy("Bootstrap streaming server")
def streaming() -> None:
    settings = StreamingSettings.from_data(internal_data(host))
    apt.packages(name="Podman", packages=["podman"], update=True, cache_time=24 * 3600)
    upload = host.data.get("centrifugo_upload")
    if upload:
        # A controller-side image archive, for servers no registry reaches (the sandbox's stand-in).
        podman.image_copied(
            name=f"Copy {settings.centrifugo_image} to the server",
            image=settings.centrifugo_image,
            image_id=images.local_image_id(settings.centrifugo_image),
            archive=upload,
        )
    env = secrets.env_file(name="Centrifugo secrets", path=CENTRIFUGO_SECRETS, keys=CENTRIFUGO_SECRET_KEYS)
    config = files.put(
        name="Centrifugo config",
        src=StringIO(centrifugo_config(settings)),
        dest=CENTRIFUGO_CONFIG,
        user="root",
        group="root",
        mode="644",
    )
    centrifugo.container(
        name=f"Centrifugo on {settings.private_address}:{settings.centrifugo_port}",
        image=settings.centrifugo_image,
        config=CENTRIFUGO_CONFIG,
        env_file=CENTRIFUGO_SECRETS,
        publish=settings.publish,
        restart=env.will_change or config.will_change,
    )
