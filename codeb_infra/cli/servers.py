"""`codeb bootstrap`: every server set up for its role."""

from __future__ import annotations

import click

from codeb_infra.cli.options import inventory_option, plan_options, report, show_plans
from codeb_infra.controller import runner
from codeb_infra.domain.changes import Change, Plan
from codeb_infra.roles import BOOTSTRAP_PHASES


@click.command()
@plan_options
@inventory_option
def bootstrap(dry: bool, as_json: bool, expect_no_changes: bool, inventory: str) -> None:
    """Install what each server's role needs (idempotent); --dry shows each server's drift."""
    if dry or expect_no_changes:
        by_host: dict[str, list[Change]] = {}
        for phase in BOOTSTRAP_PHASES:
            for plan in runner.dry_run_flow(inventory, phase, action="bootstrap"):
                by_host.setdefault(plan.host, []).extend(plan.changes)
        plans = [
            Plan(action="bootstrap", host=h, changes=tuple(c), note="" if c else "matches its role")
            for h, c in by_host.items()
        ]
        show_plans(plans, as_json=as_json, expect_no_changes=expect_no_changes)
        return
    changed = 0
    for phase in BOOTSTRAP_PHASES:
        result = runner.run_flow(inventory, phase, every_host=True)
        if not result.ok:
            report(result)
        changed += result.changed
    click.echo("no change" if changed == 0 else f"{changed} change(s)")


COMMANDS = (bootstrap,)
