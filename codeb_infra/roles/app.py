"""The app server: podman and the codeb network, Caddy (a version with per-request upstream files),
the registry layout and the codeb system user."""

from __future__ import annotations

import posixpath
from datetime import timedelta
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from codeb_infra.api.config import ApiPaths
from codeb_infra.config.app import HostSettings
from codeb_infra.domain.data import Schedule
from codeb_infra.operations import api, caddy, podman, registry, secrets, timers
from codeb_infra.roles.accounts import system_account
from codeb_infra.roles.caddy import caddy_directories, caddy_server, caddy_user
from codeb_infra.roles.dns import powerdns
from codeb_infra.roles.reports import report_servers
from codeb_infra.templates import api as api_templates

API_VENV = posixpath.dirname(posixpath.dirname(api.API_PYTHON))
API_PYTHON = api.API_PYTHON
API_ACCESS_LOG = "/var/log/caddy/api.access.log"
AUDIT_HEAD_SHIPPING = Schedule(
    "audit",
    "codeb-audit-head",
    "Audit log head hash to the backup server",
    "*:0/5",
    "root",
    ("ship-head",),
    timedelta(minutes=15),
)


@deploy("Bootstrap app server")
def app() -> None:
    settings = HostSettings.from_data(host.data)
    apt.packages(
        name="Packages for containers and Caddy",
        packages=["podman", "python3", "python3-venv", "ca-certificates", "curl", "bind9-dnsutils", "sqlite3"],
        update=True,
        cache_time=24 * 3600,
        no_recommends=False,
    )
    system_account("codeb", home="/var/lib/codeb")
    caddy_user()
    for path, mode, group in (
        (settings.codeb_dir, "755", "codeb"),
        (settings.registry_dir, "750", "codeb"),
        (settings.locks_dir, "750", "codeb"),
        (f"{settings.codeb_dir}/env", "700", "root"),
        (f"{settings.codeb_dir}/bin", "755", "root"),
        *caddy_directories(settings),
        (settings.upstreams_dir, "755", "root"),
    ):
        files.directory(name=f"Directory {path}", path=path, user="root", group=group, mode=mode)
    registry.state_tool(name="Install codeb-state", path=settings.state_tool)
    caddy_server(settings)
    podman.network(name=f"Network {settings.network}", network=settings.network)
    powerdns()
    control_plane(settings)


def control_plane(settings: HostSettings) -> None:
    """codeb-api: its venv (wheels from the controller), key secret, own inventory, systemd unit on
    127.0.0.1:9100, Caddy site api.{base_domain}, and the timer shipping the audit head."""
    paths = ApiPaths()
    for path, mode in (("/opt/codeb/api", "700"), ("/etc/codeb/api", "700"), ("/var/lib/codeb/api", "700")):
        files.directory(name=f"Directory {path}", path=path, user="root", group="root", mode=mode)
    files.directory(name="Directory /var/lib/codeb", path="/var/lib/codeb", user="codeb", group="codeb", mode="755")
    files.directory(
        name="Caddy log directory", path=posixpath.dirname(API_ACCESS_LOG), user="caddy", group="caddy", mode="750"
    )
    # Made here, Caddy's: `caddy validate` (run as root) would otherwise create it root's own.
    files.file(name="API access log", path=API_ACCESS_LOG, user="caddy", group="caddy", mode="600")
    venv = api.venv(name="codeb API virtualenv (wheelhouse from the controller)", path=API_VENV)
    secrets.secret(name="API key secret", path=paths.key_secret, length=64)
    inventory = files.put(
        name="codeb API inventory",
        src=StringIO(api_templates.render_inventory(host.data, report_servers())),
        dest=paths.inventory,
        mode="600",
    )
    unit = files.put(
        name="codeb-api unit",
        src=StringIO(api_templates.render_unit(python=API_PYTHON, paths=paths, state_dir="/var/lib/codeb/api")),
        dest="/etc/systemd/system/codeb-api.service",
        mode="644",
    )
    systemd.service(
        name="codeb-api running and enabled",
        service="codeb-api.service",
        running=True,
        enabled=True,
        daemon_reload=unit.will_change,
        restarted=venv.will_change or unit.will_change or inventory.will_change,
    )
    caddy.site(
        name=f"Caddy site api.{settings.base_domain}",
        path=posixpath.join(settings.sites_dir, "_api.caddy"),
        content=api_templates.render_site(
            base_domain=settings.base_domain, tls=settings.tls, access_log=API_ACCESS_LOG
        ),
        caddyfile=settings.caddyfile,
        caddy_bin=settings.caddy_bin,
    )
    timers.job(
        name="Timer codeb-audit-head (every 5 minutes)",
        schedule=AUDIT_HEAD_SHIPPING,
        command=f"{API_PYTHON} -m codeb_infra.api.admin ship-head",
    )
