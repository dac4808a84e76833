"""The `codeb` command: thin click wrappers over the same flows the deploy scripts run."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from codeb_infra import flows, runner
from codeb_infra.cli_data import backup, provision
from codeb_infra.cli_support import guard, inventory_option, report
from codeb_infra.domain.requests import DeployRequest, SlotRequest
from codeb_infra.roles import BOOTSTRAP_PHASES


def _slot_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--env", default="production", show_default=True, help="production or staging")(func)
    func = click.option("--lock-wait", default=0.0, help="seconds to wait for another run's lock")(func)
    func = click.option("--break-lock", is_flag=True, help="break a lock left by a run that died")(func)
    func = click.option("--data", "host_data", multiple=True, metavar="KEY=VALUE", help="extra host data (e.g. tls=off)")(func)
    return inventory_option(func)


def _data(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="--data")
        out[key] = value
    return out


def _run(inventory: str, flow: Callable[..., Any], request: Any, host_data: tuple[str, ...]) -> None:
    report(runner.run_flow(inventory, flow, request, data=_data(host_data)))


@click.group()
def main() -> None:
    """Blue-green, zero-drop deploys on your own servers."""


@main.command()
@click.argument("project")
@click.option("--image", required=True, help="image reference, e.g. registry.example.com/app:1.2 or localhost/app:v2")
@click.option("--container-port", default=3000, show_default=True)
@click.option("--health-path", default="/health", show_default=True)
@click.option("--domain", default=None, help="main domain (default: PROJECT.BASE_DOMAIN)")
@click.option("--alias", "aliases", multiple=True, help="a custom domain served like the main one (repeat for several)")
@click.option("--push", is_flag=True, help="copy IMAGE from this machine to the server over SSH (no registry needed)")
@click.option("--force", is_flag=True, help="deploy over a slot in its grace period (ends the rollback window)")
@_slot_options
@guard
def deploy(project: str, image: str, container_port: int, health_path: str, domain: str | None, aliases: tuple[str, ...], push: bool, force: bool,
           env: str, lock_wait: float, break_lock: bool, inventory: str, host_data: tuple[str, ...]) -> None:
    """Deploy IMAGE into the inactive slot of PROJECT and print its preview URL."""
    request = DeployRequest.from_data({
        "project": project, "image": image, "env": env, "container_port": container_port,
        "health_path": health_path, "domain": domain, "aliases": list(aliases) if aliases else None, "push": push, "force": force, "lock_wait": lock_wait, "break_lock": break_lock,
    })
    _run(inventory, flows.deploy_release, request, host_data)


def _slot_command(flow: Callable[..., Any], doc: str, *, with_force: bool = False, with_to: bool = False) -> Callable[..., Any]:
    @click.argument("project")
    @_slot_options
    @guard
    def command(project: str, env: str, lock_wait: float, break_lock: bool, inventory: str,
                host_data: tuple[str, ...], force: bool = False, to: str | None = None) -> None:
        request = SlotRequest.from_data({
            "project": project, "env": env, "force": force, "to": to, "lock_wait": lock_wait, "break_lock": break_lock,
        })
        _run(inventory, flow, request, host_data)

    command.__doc__ = doc
    if with_force:
        command = click.option("--force", is_flag=True, help="also remove slots still in grace, and failed slots")(command)
    if with_to:
        command = click.option("--to", default=None, help="slot to make active (blue/green); makes a rerun a no-op")(command)
    return command


main.command("promote")(_slot_command(flows.promote, "Switch PROJECT's domain to its deployed slot."))
main.command("rollback")(_slot_command(flows.rollback, "Switch PROJECT's domain back to the slot in grace.", with_to=True))
main.command("cleanup")(_slot_command(flows.cleanup, "Remove PROJECT's slots whose grace period ended.", with_force=True))
main.command("remove")(_slot_command(
    flows.remove_project, "Take PROJECT off the server: containers, site, DNS records, registry (--force if live).",
    with_force=True,
))


@main.command()
@inventory_option
@guard
def bootstrap(inventory: str) -> None:
    """Install what each server's role needs (idempotent)."""
    changed = 0
    for phase in BOOTSTRAP_PHASES:
        result = runner.run_flow(inventory, phase, every_host=True)
        if not result.ok:
            click.secho(f"failed on: {', '.join(result.failed_hosts)}", fg="red", err=True)
            sys.exit(1)
        changed += result.changed
    click.echo("no change" if changed == 0 else f"{changed} change(s)")


@main.group()
def sandbox() -> None:
    """Four local servers (Debian containers with systemd and sshd) to try codeb on."""


_state_dir = click.option("--state-dir", type=click.Path(path_type=Path), default=None,
                          help="where the key and inventory live (default ~/.local/share/codeb/sandbox)")


@sandbox.command("up")
@_state_dir
@guard
def sandbox_up(state_dir: Path | None) -> None:
    """Create (or start) the four servers and write their inventory."""
    from codeb_infra import sandbox as sandbox_lib

    sandbox_lib.up(state_dir, echo=click.echo)


@sandbox.command("down")
@_state_dir
@guard
def sandbox_down(state_dir: Path | None) -> None:
    """Remove the servers, their network, key and inventory (nothing else)."""
    from codeb_infra import sandbox as sandbox_lib

    sandbox_lib.down(state_dir, echo=click.echo)


@sandbox.command("status")
@_state_dir
@guard
def sandbox_status(state_dir: Path | None) -> None:
    """Show the servers, their SSH ports and addresses."""
    from codeb_infra import sandbox as sandbox_lib

    if sandbox_lib.status(state_dir, echo=click.echo) is None:
        sys.exit(1)


@main.command()
@_state_dir
@guard
def demo(state_dir: Path | None) -> None:
    """Walk through deploy, preview, promote and rollback on the local sandbox."""
    from codeb_infra.demo import demo as run_demo

    run_demo(state_dir)


@main.command()
@click.argument("project")
@click.option("--env", default="production", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--data", "host_data", multiple=True, metavar="KEY=VALUE")
@inventory_option
@guard
def status(project: str, env: str, as_json: bool, host_data: tuple[str, ...], inventory: str) -> None:
    """Show PROJECT's slots as recorded and as running."""
    request = SlotRequest.from_data({"project": project, "env": env})
    for found in runner.read_facts(inventory, flows.status, request, data=_data(host_data)):
        if as_json:
            click.echo(json.dumps(found, indent=2))
            continue
        click.echo(f"{found['project']}/{found['env']}  domain {found['domain']}  active: {found['active_slot'] or '-'}")
        for slot, info in found["slots"].items():
            click.echo(f"  {slot:5} {info['state']:8} port {info['port']}  {info['image'] or '-'}  container: {info['container'] or '-'}"
                       + (f"  grace until {info['grace_until']}" if info["grace_until"] else ""))


main.add_command(provision)
main.add_command(backup)


if __name__ == "__main__":
    main()
