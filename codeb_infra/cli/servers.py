"""`codeb bootstrap`: every server set up for its role."""

from __future__ import annotations

import click

from codeb_infra.cli.options import inventory_option, report
from codeb_infra.controller import runner
from codeb_infra.roles import BOOTSTRAP_PHASES


@click.command()
@inventory_option
def bootstrap(inventory: str) -> None:
    """Install what each server's role needs (idempotent)."""
    changed = 0
    for phase in BOOTSTRAP_PHASES:
        result = runner.run_flow(inventory, phase, every_host=True)
        if not result.ok:
            report(result)
        changed += result.changed
    click.echo("no change" if changed == 0 else f"{changed} change(s)")


COMMANDS = (bootstrap,)
