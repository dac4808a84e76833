"""Caddy site files and the upstream pointers their sites read per request."""

from __future__ import annotations

import posixpath
from io import StringIO

from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import files

from codeb_infra.commands import caddy as caddy_commands
from codeb_infra.commands import files as file_commands
from codeb_infra.facts.files import CaddySite, UpstreamPointer
from codeb_infra.operations import Commands


@operation()
def site(*, path: str, content: str, caddyfile: str, caddy_bin: str = "caddy") -> Commands:
    """
    Install a Caddy site file: validated by Caddy before it replaces the old one, then reload.

    + path: the site file, e.g. ``/etc/caddy/sites/myapp-production.caddy``
    + content: the rendered site
    + caddyfile: the main Caddyfile (which imports the sites directory) to reload
    + caddy_bin: caddy executable on the server

    **Example:**

    .. code:: python

        caddy.site(path="/etc/caddy/sites/myapp-production.caddy", content=text,
            caddyfile="/etc/caddy/Caddyfile")
    """
    if host.get_fact(CaddySite, path=path) == content.rstrip("\n"):
        host.noop(f"{path} is up to date")
        return
    staged = f"{path}.new"
    yield from files.directory._inner(path=posixpath.dirname(path))
    yield from files.put._inner(src=StringIO(content), dest=staged, mode="644")
    yield caddy_commands.replace_site(caddy_bin=caddy_bin, staged=staged, target=path, caddyfile=caddyfile)


@operation()
def site_removed(*, path: str, caddyfile: str, caddy_bin: str = "caddy") -> Commands:
    """
    Remove a Caddy site file and reload.

    **Example:**

    .. code:: python

        caddy.site_removed(path="/etc/caddy/sites/old-production.caddy", caddyfile="/etc/caddy/Caddyfile")
    """
    if host.get_fact(CaddySite, path=path) is None:
        host.noop(f"{path} does not exist")
        return
    yield file_commands.remove_files(path)
    yield caddy_commands.reload(caddy_bin, caddyfile)


@operation()
def upstream(*, path: str, address: str) -> Commands:
    """
    Point an upstream file at ``host:port``: the switch itself, atomic and without a reload.

    Caddy reads the file for every request (``{file.*}`` placeholder), so new requests go to the
    new address as soon as the rename lands, while requests in flight finish where they started.

    + path: the pointer file, e.g. ``/etc/caddy/upstreams/myapp-production.active``
    + address: ``127.0.0.1:PORT`` of the slot

    **Example:**

    .. code:: python

        caddy.upstream(path="/etc/caddy/upstreams/myapp-production.active", address="127.0.0.1:4051")
    """
    if host.get_fact(UpstreamPointer, path=path) == address:
        host.noop(f"{path} already points at {address}")
        return
    yield caddy_commands.write_pointer(path, address)


@operation()
def upstreams_removed(*, paths: list[str]) -> Commands:
    """
    Remove upstream pointer files (a project taken off the server).

    **Example:**

    .. code:: python

        caddy.upstreams_removed(paths=["/etc/caddy/upstreams/old-production.active"])
    """
    present = [path for path in paths if host.get_fact(UpstreamPointer, path=path) is not None]
    if not present:
        host.noop("no upstream files left")
        return
    yield file_commands.remove_files(*present)
