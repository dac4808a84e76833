"""`codeb sandbox up|down|status` and `codeb demo`: four local servers to try codeb on."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from codeb_infra.cli.errors import ExitStatus

_state_dir = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="where the key and inventory live (default ~/.local/share/codeb/sandbox)",
)


@click.group()
def sandbox() -> None:
    """Four local servers (Debian containers with systemd and sshd) to try codeb on."""


@sandbox.command("up")
@_state_dir
@click.option(
    "--spare",
    "spares",
    multiple=True,
    type=click.Choice(["storage", "app"]),
    help="also a spare server ROLE-target (group `targets`) to migrate ROLE to; repeatable",
)
def sandbox_up(state_dir: Path | None, spares: tuple[str, ...]) -> None:
    """Create (or start) the four servers (and spares) and write their inventory."""
    from codeb_infra import sandbox as sandbox_lib

    sandbox_lib.up(state_dir, spares=spares, echo=click.echo)


@sandbox.command("down")
@_state_dir
def sandbox_down(state_dir: Path | None) -> None:
    """Remove the servers, their network, key and inventory (nothing else)."""
    from codeb_infra import sandbox as sandbox_lib

    sandbox_lib.down(state_dir, echo=click.echo)


@sandbox.command("status")
@_state_dir
def sandbox_status(state_dir: Path | None) -> None:
    """Show the servers, their SSH ports and addresses."""
    from codeb_infra import sandbox as sandbox_lib

    if sandbox_lib.status(state_dir, echo=click.echo) is None:
        sys.exit(ExitStatus.FAILED)


@click.command()
@_state_dir
def demo(state_dir: Path | None) -> None:
    """Walk through deploy, preview, promote and rollback on the local sandbox."""
    from codeb_infra.controller.demo import demo as run_demo

    run_demo(state_dir)


COMMANDS = (sandbox, demo)
