"""`codeb deploy|promote|rollback|cleanup|remove|status`: one project/env's slots."""

from __future__ import annotations

import json
from typing import Any

import click

from codeb_infra import flows
from codeb_infra.cli.options import (
    data_option,
    env_option,
    inventory_option,
    lock_options,
    parse_data,
    plan_options,
    report,
    show_plans,
)
from codeb_infra.cli.releases import rollback_to_release
from codeb_infra.controller import runner
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.requests import DeployRequest, SlotRequest


def _dry(dry: bool, expect_no_changes: bool) -> bool:
    # --expect-no-changes is a check: it plans and never applies.
    return dry or expect_no_changes


def _plan_or_apply(
    inventory: str,
    plan: Any,
    flow: Any,
    request: Any,
    host_data: tuple[str, ...],
    dry: bool,
    as_json: bool,
    expect_no_changes: bool,
) -> None:
    """--dry / --expect-no-changes print the plan and change nothing; otherwise the flow runs."""
    data = parse_data(host_data)
    if _dry(dry, expect_no_changes):
        show_plans(
            runner.plan_flow(inventory, plan, request, data=data), as_json=as_json, expect_no_changes=expect_no_changes
        )
        return
    report(runner.run_flow(inventory, flow, request, data=data))


def _slot_request(
    project: str, env: str, lock_wait: float = 0.0, break_lock: bool = False, **more: object
) -> SlotRequest:
    return SlotRequest.from_data(
        {"project": project, "env": env, "lock_wait": lock_wait, "break_lock": break_lock, **more}
    )


@click.command()
@click.argument("project")
@click.option("--image", required=True, help="image reference, e.g. registry.example.com/app:1.2 or localhost/app:v2")
@click.option("--container-port", default=3000, show_default=True)
@click.option("--health-path", default="/health", show_default=True)
@click.option("--domain", default=None, help="main domain (default: PROJECT.BASE_DOMAIN)")
@click.option("--alias", "aliases", multiple=True, help="a custom domain served like the main one (repeat for several)")
@click.option("--push", is_flag=True, help="copy IMAGE from this machine to the server over SSH (no registry needed)")
@click.option("--force", is_flag=True, help="deploy over a slot in its grace period (ends the rollback window)")
@click.option(
    "--migrate", default=None, help="command run once in the new image (with its env) before the health check"
)
@click.option("--contract", default=None, help="command run by cleanup once the previous release's grace period ended")
@env_option
@lock_options
@plan_options
@data_option
@inventory_option
def deploy(
    project: str,
    image: str,
    container_port: int,
    health_path: str,
    domain: str | None,
    aliases: tuple[str, ...],
    push: bool,
    force: bool,
    migrate: str | None,
    contract: str | None,
    env: str,
    lock_wait: float,
    break_lock: bool,
    dry: bool,
    as_json: bool,
    expect_no_changes: bool,
    host_data: tuple[str, ...],
    inventory: str,
) -> None:
    """Deploy IMAGE into the inactive slot of PROJECT and print its preview URL."""
    request = DeployRequest.from_data(
        {
            "project": project,
            "image": image,
            "env": env,
            "container_port": container_port,
            "health_path": health_path,
            "domain": domain,
            "aliases": list(aliases) if aliases else None,
            "push": push,
            "force": force,
            "lock_wait": lock_wait,
            "break_lock": break_lock,
            "migrate": migrate,
            "contract": contract,
        }
    )
    _plan_or_apply(
        inventory, flows.plan_deploy, flows.deploy_release, request, host_data, dry, as_json, expect_no_changes
    )


@click.command()
@click.argument("project")
@click.option("--no-watch", is_flag=True, help="do not watch the new release afterwards (host data watch_minutes)")
@env_option
@lock_options
@plan_options
@data_option
@inventory_option
def promote(
    project: str,
    no_watch: bool,
    env: str,
    lock_wait: float,
    break_lock: bool,
    dry: bool,
    as_json: bool,
    expect_no_changes: bool,
    host_data: tuple[str, ...],
    inventory: str,
) -> None:
    """Switch PROJECT's domain to its deployed slot; the app server then watches it and rolls back on failure."""
    request = _slot_request(project, env, lock_wait, break_lock, watch=not no_watch)
    _plan_or_apply(inventory, flows.plan_promote, flows.promote, request, host_data, dry, as_json, expect_no_changes)


@click.command()
@click.argument("project")
@click.option("--to", default=None, help="slot to make active (blue/green); makes a rerun a no-op")
@click.option("--release", default=None, help="redeploy release N (its image and env version) and promote it")
@env_option
@lock_options
@plan_options
@data_option
@inventory_option
def rollback(
    project: str,
    to: str | None,
    release: str | None,
    env: str,
    lock_wait: float,
    break_lock: bool,
    dry: bool,
    as_json: bool,
    expect_no_changes: bool,
    host_data: tuple[str, ...],
    inventory: str,
) -> None:
    """Switch PROJECT's domain back to the slot in grace (or, with --release, redeploy an older release)."""
    if release is not None:
        if _dry(dry, expect_no_changes):
            raise CodebError("--release cannot be planned with --dry yet: it is a deploy of release N, then a promote")
        rollback_to_release(project, env, release, inventory, parse_data(host_data), lock_wait, break_lock)
        return
    request = _slot_request(project, env, lock_wait, break_lock, to=to)
    _plan_or_apply(inventory, flows.plan_rollback, flows.rollback, request, host_data, dry, as_json, expect_no_changes)


@click.command()
@click.argument("project")
@click.option("--force", is_flag=True, help="also remove slots still in grace, and failed slots")
@env_option
@lock_options
@plan_options
@data_option
@inventory_option
def cleanup(
    project: str,
    force: bool,
    env: str,
    lock_wait: float,
    break_lock: bool,
    dry: bool,
    as_json: bool,
    expect_no_changes: bool,
    host_data: tuple[str, ...],
    inventory: str,
) -> None:
    """Remove PROJECT's slots whose grace period ended."""
    request = _slot_request(project, env, lock_wait, break_lock, force=force)
    _plan_or_apply(inventory, flows.plan_cleanup, flows.cleanup, request, host_data, dry, as_json, expect_no_changes)


@click.command()
@click.argument("project")
@click.option("--force", is_flag=True, help="remove even while the project serves its domain")
@env_option
@lock_options
@plan_options
@data_option
@inventory_option
def remove(
    project: str,
    force: bool,
    env: str,
    lock_wait: float,
    break_lock: bool,
    dry: bool,
    as_json: bool,
    expect_no_changes: bool,
    host_data: tuple[str, ...],
    inventory: str,
) -> None:
    """Take PROJECT off the server: containers, site, DNS records, registry (--force if live)."""
    request = _slot_request(project, env, lock_wait, break_lock, force=force)
    _plan_or_apply(
        inventory, flows.plan_remove, flows.remove_project, request, host_data, dry, as_json, expect_no_changes
    )


@click.command()
@click.argument("project")
@env_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@data_option
@inventory_option
def status(project: str, env: str, as_json: bool, host_data: tuple[str, ...], inventory: str) -> None:
    """Show PROJECT's slots as recorded and as running."""
    request = _slot_request(project, env)
    for found in runner.read_facts(inventory, flows.status, request, data=parse_data(host_data)):
        if as_json:
            click.echo(json.dumps(found, indent=2))
            continue
        click.echo(
            f"{found['project']}/{found['env']}  domain {found['domain']}  active: {found['active_slot'] or '-'}"
        )
        for slot, info in found["slots"].items():
            click.echo(
                f"  {slot:5} {info['state']:8} port {info['port']}  {info['image'] or '-'}"
                f"  container: {info['container'] or '-'}"
                + (f"  release {info['release']}" if info.get("release") else "")
                + (f"  grace until {info['grace_until']}" if info["grace_until"] else "")
            )
        watch = found.get("watch")
        if watch:
            click.echo(
                f"  watch: {watch.get('state')} ({watch.get('slot')}, {watch.get('since')} to {watch.get('until')})"
                + (
                    f"  rolled back to {watch.get('rollback_to')} at {watch.get('at')}"
                    if watch.get("state") == "rolled_back"
                    else ""
                )
                + (f"  why: {watch['reason']}" if watch.get("reason") else "")
            )


COMMANDS = (deploy, promote, rollback, cleanup, remove, status)
