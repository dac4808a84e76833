"""`codeb migrate ROLE --to HOST [--dry-run] [--abort]`: move a server's role to the target the
inventory marks for it (see flows.migrate_app)."""

from __future__ import annotations

import sys

import click

from codeb_infra.cli.options import data_option, inventory_option, parse_data
from codeb_infra.domain.migrate import MIGRATABLE_ROLES


@click.command()
@click.argument("role", type=click.Choice(MIGRATABLE_ROLES))
@click.option("--to", "target", required=True, help="the inventory host marked `migrate_target: ROLE`")
@click.option("--dry-run", is_flag=True, help="run the preflight checks only; exit 1 when one fails")
@click.option("--abort", is_flag=True, help="within the grace period: back to the source")
@data_option
@inventory_option
def migrate(role: str, target: str, dry_run: bool, abort: bool, host_data: tuple[str, ...], inventory: str) -> None:
    """Move ROLE's server to TARGET with no failed request; re-run to continue after a crash."""
    if dry_run and abort:
        raise click.UsageError("--dry-run and --abort exclude each other")
    if role == "app":
        from codeb_infra.flows import migrate_app

        status = migrate_app.run(inventory, target, dry=dry_run, undo=abort, data=parse_data(host_data), say=click.echo)
        sys.exit(status)
    raise click.UsageError(f"migrating {role} is not available in this version")


COMMANDS = (migrate,)
