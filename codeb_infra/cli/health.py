"""`codeb health`: every server, project and backup checked; each finding with its fix."""

from __future__ import annotations

import json
import sys

import click

from codeb_infra.cli.options import inventory_option
from codeb_infra.flows import health as health_flow


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@inventory_option
def health(as_json: bool, inventory: str) -> None:
    """Check servers, units, disks, clocks, slots through Caddy, certificates, DNS, backups and the
    registry against what runs (reads only); exits 1 when anything needs attention."""
    report = health_flow.check(inventory)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for finding in report.findings:
            since = f" (since {finding.since.isoformat()})" if finding.since else ""
            click.secho(f"FAIL  {finding.server:10} {finding.check}: {finding.problem}{since}", fg="red", bold=True)
            click.echo(f"      fix: {finding.fix}")
        click.echo(f"{len(report.checked)} checks, {len(report.findings)} finding(s)")
        if report.ok:
            click.secho("healthy", fg="green")
    sys.exit(0 if report.ok else 1)


COMMANDS = (health,)
