"""Options shared by the `codeb` command groups, and the one line a run ends with."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from codeb_infra.cli.errors import ExitStatus


def inventory_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-i", "--inventory", default="inventory.py", show_default=True,
        help="pyinfra inventory file (or @local, or a sandbox inventory)",
    )(func)


def data_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--data", "host_data", multiple=True, metavar="KEY=VALUE", help="extra host data (e.g. tls=off)")(func)


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
