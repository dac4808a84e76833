"""The streaming server: Centrifugo in a podman container run by systemd, its client endpoints on
127.0.0.1 behind Caddy as ws.{base_domain} (the app server's TLS modes), its server API, admin
and health on its internal port on the private address; its secrets are made on the server, in a
root-only env file."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files

from codeb_infra.config.app import HostSettings
from codeb_infra.config.roles import (
    CENTRIFUGO_CONFIG,
    CENTRIFUGO_SECRET_KEYS,
    CENTRIFUGO_SECRETS,
    StreamingSettings,
    centrifugo_config,
)
from codeb_infra.controller import images
from codeb_infra.operations import caddy, centrifugo, podman, secrets
from codeb_infra.roles.caddy import caddy_directories, caddy_server, caddy_user
from codeb_infra.roles.network import internal_data
from codeb_infra.templates.caddy import render_ws_site

WS_SITE = "_ws.caddy"


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
        name=(
            f"Centrifugo: clients on {settings.client_upstream}, "
            f"internal on {settings.private_address}:{settings.centrifugo_internal_port}"
        ),
        image=settings.centrifugo_image,
        config=CENTRIFUGO_CONFIG,
        env_file=CENTRIFUGO_SECRETS,
        publish=list(settings.publish),
        restart=env.will_change or config.will_change,
    )
    _ws_site(settings)


def _ws_site(streaming: StreamingSettings) -> None:
    """Caddy serving ws.{base_domain} from Centrifugo's client port, with the TLS mode of the app
    server's sites (host data `tls`, `acme_*`)."""
    settings = HostSettings.from_data(host.data)
    caddy_user()
    for path, mode, group in caddy_directories(settings):
        files.directory(name=f"Directory {path}", path=path, user="root", group=group, mode=mode)
    caddy_server(settings)
    caddy.site(
        name=f"Caddy site ws.{settings.base_domain}",
        path=f"{settings.sites_dir}/{WS_SITE}",
        content=render_ws_site(base_domain=settings.base_domain, tls=settings.tls, upstream=streaming.client_upstream),
        caddyfile=settings.caddyfile,
        caddy_bin=settings.caddy_bin,
    )
