"""`codeb version [--check]`: this controller's codeb-infra version and each server's."""

from __future__ import annotations

import json
import sys

import click

from codeb_infra import __version__
from codeb_infra.cli.options import inventory_option
from codeb_infra.controller import runner
from codeb_infra.flows.version import server_version
from codeb_infra.roles import ROLES, host_roles


@click.command()
@click.option(
    "--check", is_flag=True, help="exit 1 when a server runs tools of another version (bootstrap brings it in line)"
)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@inventory_option
def version(check: bool, as_json: bool, inventory: str) -> None:
    """Print the controller's codeb-infra version and each server's."""
    found = runner.read_groups(inventory, {role: lambda: server_version(host_roles()) for role in ROLES})
    if as_json:
        click.echo(json.dumps({"controller": __version__, "servers": found}, indent=2))
    else:
        click.echo(f"controller  {__version__}")
        for role, server in found.items():
            if server is None:
                click.secho(f"{role:10}  unreachable", fg="red")
                continue
            problems = server["problems"]
            click.secho(
                f"{role:10}  {server['version'] or '-'}  {server['server']}"
                + (f"  MISMATCH: {'; '.join(problems)}" if problems else ""),
                fg="red" if problems else None,
            )
    bad = [role for role, server in found.items() if server is None or server["problems"]]
    if check and bad:
        click.secho(f"version mismatch on: {', '.join(bad)}", fg="red", err=True)
        sys.exit(1)


COMMANDS = (version,)
