"""Rendering of Caddy site files (pure: values in, text out)."""

from __future__ import annotations

from jinja2 import Environment as Jinja, PackageLoader, StrictUndefined

from codeb_infra.domain.names import Environment

_JINJA = Jinja(loader=PackageLoader("codeb_infra", "templates"), undefined=StrictUndefined, keep_trailing_newline=True)


def site_address(domain: str, tls: str) -> str:
    return f"http://{domain}" if tls == "off" else domain


def render_site(
    *, project: str, env: Environment, domains: list[str], preview_domains: list[str], tls: str,
    active_pointer: str, preview_pointer: str,
) -> str:
    return _JINJA.get_template("site.caddy.j2").render(
        project=project,
        env=env.value,
        tls=tls,
        site_addresses=", ".join(site_address(d, tls) for d in domains),
        preview_addresses=", ".join(site_address(d, tls) for d in preview_domains),
        active_pointer=active_pointer,
        preview_pointer=preview_pointer,
    )
