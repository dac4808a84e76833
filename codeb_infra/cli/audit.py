"""`codeb audit [--project P] [--since T] [--json]` and `codeb audit verify`: the app server's
audit log, read over SSH."""

from __future__ import annotations

import json
import sys

import click

from codeb_infra.cli.errors import ExitStatus
from codeb_infra.cli.keys import admin
from codeb_infra.cli.options import inventory_option
from codeb_infra.commands import api as api_commands
from codeb_infra.controller import runner
from codeb_infra.roles.app import API_PYTHON


@click.group(invoke_without_command=True)
@click.option("--project", default=None, help="only this project's rows")
@click.option("--since", default=None, metavar="TIME", help="only rows from TIME on (ISO, e.g. 2026-12-01T00:00)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@inventory_option
@click.pass_context
def audit(context: click.Context, project: str | None, since: str | None, as_json: bool, inventory: str) -> None:
    """Who did what: every API request and every change made over SSH."""
    if context.invoked_subcommand is not None:
        return
    arguments = ["audit-list", *(["--project", project] if project else []), *(["--since", since] if since else [])]
    rows = json.loads(admin(inventory, *arguments))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        target = f"{row['project']}/{row['env']}" if row["project"] else "-"
        who = row["key_name"] and f"key {row['key_id']} ({row['key_name']}, {row['role']})" or row["actor"]
        click.echo(
            f"{row['seq']:>6}  {row['at']}  {row['outcome']:8} {row['status'] or '':>3}  {row['tool'] or '-':15} "
            f"{target:25} {who}  from {row['source'] or '-'}" + (f"  {row['error']}" if row["error"] else "")
        )


@audit.command("verify")
@click.option("--local-only", is_flag=True, help="skip the comparison with the heads shipped to the backup server")
@inventory_option
def verify(local_only: bool, inventory: str) -> None:
    """Check the hash chain and the heads shipped to the backup server (exit 1 naming the first bad row)."""
    arguments = ["audit-verify", *(["--local-only"] if local_only else [])]
    result = runner.run_command(inventory, "app", lambda _: api_commands.admin(API_PYTHON, *arguments))
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        click.secho(
            f"error: cannot verify on {result.host}: {(result.stderr or result.stdout).strip()[-300:]}",
            fg="red",
            err=True,
        )
        sys.exit(ExitStatus.FAILED)
    if not report["ok"]:
        click.secho(f"audit log does NOT verify: {report['problem']}", fg="red", err=True)
        sys.exit(ExitStatus.FAILED)
    click.echo(f"audit log verifies: {report['rows']} rows, {report['shipped_heads']} shipped heads match")


COMMANDS = (audit,)
