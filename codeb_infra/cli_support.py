"""Options and error handling shared by the `codeb` command groups."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from codeb_infra.domain.errors import CodebError


def inventory_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-i", "--inventory", default="inventory.py", show_default=True,
        help="pyinfra inventory file (or @local, or a sandbox inventory)",
    )(func)


def guard(func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CodebError as error:
            click.secho(f"error: {error} (nothing was changed)", fg="red", err=True)
            sys.exit(2)
    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def report(result: Any) -> None:
    """One line for a run: its number of changes, or the hosts it failed on (exit 1)."""
    if not result.ok:
        click.secho(f"failed on: {', '.join(result.failed_hosts)}", fg="red", err=True)
        sys.exit(1)
    click.echo("no change" if result.changed == 0 else f"{result.changed} change(s)")
