"""`codeb provision` and `codeb backup …`: a project's data, and the backups that keep it."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from codeb_infra.cli.options import inventory_option, plan_options, report, show_plans
from codeb_infra.controller import runner
from codeb_infra.domain.data import ProjectData
from codeb_infra.domain.errors import CodebError
from codeb_infra.flows import backups
from codeb_infra.flows.provision import provision as provision_flow


@click.command()
@click.argument("project")
@plan_options
@inventory_option
def provision(project: str, dry: bool, as_json: bool, expect_no_changes: bool, inventory: str) -> None:
    """Give PROJECT its database, role and Redis user; write its master env on the app server."""
    ProjectData.of(project)
    if dry or expect_no_changes:
        plans = runner.dry_run_flow(inventory, provision_flow, project, action=f"provision {project}")
        show_plans(plans, as_json=as_json, expect_no_changes=expect_no_changes)
        return
    report(runner.run_flow(inventory, provision_flow, project, every_host=True))


@click.group()
def backup() -> None:
    """Backups of the storage server: status, restore drills, point-in-time restore."""


@backup.command("status")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@inventory_option
def backup_status(as_json: bool, inventory: str) -> None:
    """Age and size of each kind of backup and the last drill; exits 1 when any is missing or late."""
    report = backups.status(inventory)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for check in report.checks:
            size = f"  {check.size / 1e6:.1f} MB" if check.size else ""
            click.secho(
                f"{'ok  ' if check.ok else 'FAIL'}  {check.name:28} {check.detail}{size}",
                fg=None if check.ok else "red",
                bold=not check.ok,
            )
        if not report.ok:
            click.secho("BACKUPS NEED ATTENTION", fg="red", bold=True, err=True)
    sys.exit(0 if report.ok else 1)


@backup.command("verify")
@click.option("--json", "as_json", is_flag=True, help="print the drill's record as JSON")
@inventory_option
def backup_verify(as_json: bool, inventory: str) -> None:
    """Restore drill: latest base backup + WAL, dumps, RDB and AOF into scratch servers, checked."""
    ok, record, said = backups.verify(inventory)
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        rpo, rto = record.get("recovery_point_seconds"), record.get("recovery_time_seconds")
        click.echo(f"base backup {record.get('base')}: recovery point {rpo}s, recovery time {rto}s")
        for name, result in (record.get("databases") or {}).items():
            click.echo(
                f"  {name}: canary {'ok' if result.get('canary_ok') else 'WRONG'}, tables {result.get('tables')}"
            )
        for failure in record.get("failures") or []:
            click.secho(f"FAIL  {failure}", fg="red", bold=True)
    if not ok:
        click.secho(
            f"restore drill FAILED{': ' + said.strip() if said.strip() and not as_json else ''}", fg="red", err=True
        )
        sys.exit(1)


@backup.command("restore-pitr")
@click.argument("database", required=False)
@click.option("--to", "target", help="ISO time with zone, e.g. 2026-11-22T10:15:00+00:00, or `latest`")
@click.option("--drop", "drop", metavar="NAME", help="stop and remove a scratch restore made before")
@inventory_option
def backup_restore_pitr(database: str | None, target: str | None, drop: str | None, inventory: str) -> None:
    """Restore DATABASE as it was at --to (or everything archived: --to latest) into a scratch
    server on the backup server, never over the live one, and print how to connect to it."""
    if drop:
        click.echo(backups.drop_pitr(inventory, drop))
        return
    if not database or not target:
        raise CodebError("give a database and --to TIME (or --drop NAME)")
    try:
        when = None if target == "latest" else datetime.fromisoformat(target.replace("Z", "+00:00"))
    except ValueError:
        raise CodebError(f"--to {target!r}: expected an ISO time like 2026-11-22T10:15:00+00:00, or `latest`") from None
    click.echo(json.dumps(backups.restore_pitr(inventory, database, when), indent=2))


@backup.command("now")
@click.argument("kinds", nargs=-1, type=click.Choice(sorted(backups.JOBS)))
@inventory_option
def backup_now(kinds: tuple[str, ...], inventory: str) -> None:
    """Take backups now instead of waiting for their timers (default: base, dump and redis)."""
    failed = False
    chosen = list(kinds or backups.JOBS)
    for kind, result in zip(chosen, backups.run_now(inventory, chosen), strict=True):
        click.secho(
            f"{kind}: {'done' if result.ok else 'FAILED ' + result.stderr.strip()[-500:]}",
            fg=None if result.ok else "red",
        )
        failed = failed or not result.ok
    sys.exit(1 if failed else 0)


COMMANDS = (provision, backup)
