"""Rendering of the main Caddyfile and Caddy site files (pure: values in, text out)."""

from __future__ import annotations

from codeb_infra.config.app import HostSettings
from codeb_infra.domain.names import Environment
from codeb_infra.templates import render


def render_caddyfile(settings: HostSettings) -> str:
    """Global options (ACME issuer, admin endpoint) and the import of every site file."""
    return render("Caddyfile.j2", sites_dir=settings.sites_dir, tls=settings.tls, acme_options=settings.acme_options)


def site_address(domain: str, tls: str) -> str:
    return f"http://{domain}" if tls == "off" else domain


def render_site(
    *,
    project: str,
    env: Environment,
    domains: list[str],
    preview_domains: list[str],
    tls: str,
    active_pointer: str,
    preview_pointer: str,
    access_log: str,
) -> str:
    return render(
        "site.caddy.j2",
        project=project,
        env=env.value,
        tls=tls,
        site_addresses=", ".join(site_address(d, tls) for d in domains),
        preview_addresses=", ".join(site_address(d, tls) for d in preview_domains),
        active_pointer=active_pointer,
        preview_pointer=preview_pointer,
        access_log=access_log,
    )


def render_ws_site(*, base_domain: str, tls: str, upstream: str) -> str:
    """The streaming server's site ws.{base_domain}: Centrifugo's client port behind Caddy's TLS."""
    domain = f"ws.{base_domain}"
    return render("ws.caddy.j2", domain=domain, site_address=site_address(domain, tls), tls=tls, upstream=upstream)
