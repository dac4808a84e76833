"""The app server's authoritative DNS: PowerDNS on a sqlite database, answering on the addresses
of host data ``dns_listen`` and managed only through its HTTP API on loopback."""

from __future__ import annotations

import posixpath
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from codeb_infra.config.app import DnsSettings
from codeb_infra.operations import powerdns as pdns
from codeb_infra.templates import render

TOOL_SOURCE = Path(__file__).resolve().parent.parent / "remote" / "codeb_pdns.py"
PDNS_CONF_DIR = "/etc/powerdns/pdns.d"  # Debian's pdns.conf includes every file here
CONFIG = f"{PDNS_CONF_DIR}/codeb.conf"
KEY_CONFIG = f"{PDNS_CONF_DIR}/codeb-api.conf"
DATABASE = "/var/lib/powerdns/pdns.sqlite3"


def config_text(settings: DnsSettings, *, database: str = DATABASE, key_conf: str = KEY_CONFIG) -> str:
    return render(
        "pdns.conf.j2",
        database=database,
        listen=settings.dns_listen,
        port=settings.dns_port,
        api_port=settings.pdns_api_port,
        key_conf=key_conf,
    )


@deploy("PowerDNS")
def powerdns() -> None:
    settings = DnsSettings.from_data(host.data)
    api = settings.api
    apt.packages(
        name="PowerDNS packages",
        packages=["pdns-server", "pdns-backend-sqlite3", "python3"],
        update=True,
        cache_time=24 * 3600,
    )
    files.put(name="Install codeb-pdns", src=str(TOOL_SOURCE), dest=api.tool, mode="755", create_remote_dir=True)
    files.directory(
        name="Secrets directory", path=posixpath.dirname(api.key_file), user="root", group="root", mode="700"
    )
    pdns.sqlite_schema(name="PowerDNS database", database=DATABASE, tool=api.tool)
    # Debian's package launches the bind backend from pdns.d/bind.conf; ours replaces `launch`,
    # which leaves bind's settings unknown and pdns refusing to start.
    debian_bind = files.file(
        name="Debian's bind backend config removed", path=f"{posixpath.dirname(CONFIG)}/bind.conf", present=False
    )
    config = files.put(
        name="PowerDNS config",
        src=StringIO(config_text(settings)),
        dest=CONFIG,
        user="root",
        group="pdns",
        mode="640",
    )
    key = pdns.api_key(name="PowerDNS API key", conf=KEY_CONFIG, api=api)
    systemd.service(
        name="PowerDNS running and enabled",
        service="pdns.service",
        running=True,
        enabled=True,
        restarted=config.will_change or key.will_change or debian_bind.will_change,
    )
    managed_zones(settings)


def managed_zones(settings: DnsSettings) -> None:
    """The zones codeb manages (host data ``dns_zones``, default the base domain) with their SOA and
    NS; when the nameserver is the default ``ns1.BASE_DOMAIN``, also its address record."""
    api = settings.api
    for zone in settings.zones:
        pdns.zone(
            name=f"DNS zone {zone}",
            zone=zone,
            nameservers=settings.nameservers,
            hostmaster=settings.dns_hostmaster,
            default_ttl=settings.dns_default_ttl,
            api=api,
        )
    _server_names(settings)
    if settings.dns_nameservers or not settings.public_address:
        return
    for nameserver in settings.nameservers:
        nameserver_zone = settings.zone_of(nameserver)
        if nameserver_zone:
            pdns.record(
                name=f"Address of {nameserver}",
                zone=nameserver_zone,
                record_name=nameserver,
                rtype="A",
                contents=[settings.public_address],
                owner="codeb/nameserver",
                api=api,
            )


# The system's documented names of its four servers, e.g. db.codeb.kr for the storage server, and
# the team's API, which the app server's Caddy serves.
SERVER_NAMES = (("app", "app"), ("app", "api"), ("streaming", "ws"), ("storage", "db"), ("backup", "backup"))


def _server_names(settings: DnsSettings) -> None:
    """``app``, ``api``, ``ws``, ``db`` and ``backup`` under the base domain, from the inventory's groups."""
    for role, label in SERVER_NAMES:
        for server in host.state.inventory.get_group(role, default=[]):
            address = server.data.get("public_address") or server.data.get("private_address")
            record_name = f"{label}.{settings.base_domain}"
            zone = settings.zone_of(record_name)
            if address and zone:
                pdns.record(
                    name=f"Address of {record_name}",
                    zone=zone,
                    record_name=record_name,
                    rtype="A",
                    contents=[str(address)],
                    owner="codeb/servers",
                    api=settings.api,
                )
