"""Options shared by the `codeb` command groups, the one line a run ends with, and how a plan is
printed (--dry, --json, --expect-no-changes)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from codeb_infra.cli.errors import ExitStatus
from codeb_infra.domain.changes import Plan


def inventory_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-i",
        "--inventory",
        default="inventory.py",
        show_default=True,
        help="pyinfra inventory file (or @local, or a sandbox inventory)",
    )(func)


def data_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--data", "host_data", multiple=True, metavar="KEY=VALUE", help="extra host data (e.g. tls=off)"
    )(func)


def lock_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--lock-wait", default=0.0, help="seconds to wait for another run's lock")(func)
    return click.option("--break-lock", is_flag=True, help="break a lock left by a run that died")(func)


def env_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--env", default="production", show_default=True, help="production or staging")(func)


def parse_data(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="--data")
        out[key] = value
    return out


def report(result: Any) -> None:
    """One line for a run: its number of changes, or the hosts it failed on (exit 1)."""
    if not result.ok:
        click.secho(f"failed on: {', '.join(result.failed_hosts)}", fg="red", err=True)
        sys.exit(ExitStatus.FAILED)
    click.echo("no change" if result.changed == 0 else f"{result.changed} change(s)")


def plan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--dry, --json and --expect-no-changes of every command that changes servers."""
    func = click.option(
        "--expect-no-changes", is_flag=True, help="plan only, and exit 3 when anything would change (a drift check)"
    )(func)
    func = click.option("--json", "as_json", is_flag=True, help="with --dry: print the plan as JSON")(func)
    return click.option(
        "--dry", is_flag=True, help="print the plan (each change, host, old -> new) and change nothing"
    )(func)


def show_plans(plans: list[Plan], *, as_json: bool, expect_no_changes: bool) -> None:
    """Print the plans; under --expect-no-changes exit 3 when any has a change."""
    if as_json:
        payload = {"changed": any(p.changed for p in plans), "plans": [p.as_dict() for p in plans]}
        click.echo(json.dumps(payload, indent=2))
    else:
        for plan in plans:
            click.echo("\n".join(plan.lines()))
    if expect_no_changes and any(p.changed for p in plans):
        click.secho("changes pending", fg="yellow", err=True)
        sys.exit(ExitStatus.CHANGES_PENDING)
