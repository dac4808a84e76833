"""`codeb migrate ROLE --to HOST [--dry-run] [--abort]`: move a server's role to the target host
the inventory marks for it (host data `migrate_target: ROLE`, group `targets`); see
flows.migrate_storage and flows.migrate_app."""

from __future__ import annotations

import sys

import click

from codeb_infra.cli.options import data_option, inventory_option, parse_data
from codeb_infra.controller import runner
from codeb_infra.domain import migrate as shared
from codeb_infra.domain.errors import CodebError


@click.command()
@click.argument("role", type=click.Choice(shared.MIGRATABLE_ROLES))
@click.option("--to", "target", required=True, help="inventory host to move ROLE to (migrate_target: ROLE)")
@click.option("--dry-run", is_flag=True, help="only the preflight checks; changes nothing; exit 1 when one fails")
@click.option("--abort", is_flag=True, help="within the grace period, return ROLE to its source")
@data_option
@inventory_option
def migrate(role: str, target: str, dry_run: bool, abort: bool, host_data: tuple[str, ...], inventory: str) -> None:
    """Move ROLE (storage or app) to HOST with nothing lost; re-run to continue after a crash."""
    if dry_run and abort:
        raise click.UsageError("--dry-run and --abort exclude each other")
    shared.check_target(role, target, runner.inventory_hosts(inventory))
    if role == "app":
        from codeb_infra.flows import migrate_app

        status = migrate_app.run(inventory, target, dry=dry_run, undo=abort, data=parse_data(host_data), say=click.echo)
        sys.exit(status)
    from codeb_infra.flows import migrate_storage

    if abort:
        raise CodebError("--abort of a storage migration is not available yet; the source stays fenced read-only")
    if dry_run:
        checks = migrate_storage.checks(inventory, target)
        click.echo(shared.report(checks))
        sys.exit(shared.exit_code(checks))
    migrate_storage.migrate(inventory, target, echo=click.echo)


COMMANDS = (migrate,)
