"""Rendering of the API's files on the app server: its inventory, systemd unit and Caddy site
(pure: values in, text out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from codeb_infra.api.config import MAX_BODY, ApiPaths
from codeb_infra.config.app import DNS_KEYS, KEYS
from codeb_infra.config.network import NetworkSettings
from codeb_infra.config.roles import REPORT_SERVERS_KEY, HostData
from codeb_infra.templates import render
from codeb_infra.templates.caddy import site_address

PORT = 9100
INVENTORY_KEYS = (*KEYS, *DNS_KEYS, *NetworkSettings.model_fields, "private_address", "public_address")
"""The app host's settings the API's flows read (the mesh's too: `health_check` reads wg0 as `codeb health` does)."""


def render_inventory(host_data: HostData, report_servers: Sequence[Mapping[str, Any]] = ()) -> str:
    """The API's own inventory: this app server as `@local`, with the app host's settings (none
    of them secret: secrets stay in their files under /etc/codeb/secrets), and the storage and
    backup servers it reads through their reports (`flows.reports`), never as pyinfra hosts."""
    data: dict[str, Any] = {key: host_data.get(key) for key in INVENTORY_KEYS if host_data.get(key) is not None}
    if report_servers:
        data[REPORT_SERVERS_KEY] = [dict(server) for server in report_servers]
    return (
        "# The codeb API's inventory, written by codeb-infra: the flows run on this server as @local.\n"
        f"app = [('@local', {dict(sorted(data.items()))!r})]\n"
    )


def render_unit(*, python: str, paths: ApiPaths, state_dir: str) -> str:
    return render(
        "codeb-api.service.j2",
        python=python,
        port=PORT,
        inventory=paths.inventory,
        keys_db=paths.keys_db,
        audit_db=paths.audit_db,
        key_secret=paths.key_secret,
        state_dir=state_dir,
    )


def render_site(*, base_domain: str, tls: str, access_log: str) -> str:
    domain = f"api.{base_domain}"
    # Caddy refuses bodies far over the API's limit; the API itself answers 413 (and audits it) above MAX_BODY.
    return render(
        "api.caddy.j2",
        domain=domain,
        site_address=site_address(domain, tls),
        tls=tls,
        upstream=f"127.0.0.1:{PORT}",
        access_log=access_log,
        max_body=f"{2 * MAX_BODY // (1024 * 1024)}MB",
    )
