"""`codeb releases`, and `codeb rollback --release N` (see controller/releases.py)."""

from __future__ import annotations

import json
from typing import Any

import click

from codeb_infra.cli.options import data_option, env_option, inventory_option, parse_data, report
from codeb_infra.controller import releases as controller_releases
from codeb_infra.controller import runner
from codeb_infra.domain import names
from codeb_infra.flows import releases as release_flows
from codeb_infra.flows.releases import ReleaseRequest


def rollback_to_release(
    project: str,
    env: str,
    release: object,
    inventory: str,
    data: dict[str, Any],
    lock_wait: float = 0.0,
    break_lock: bool = False,
) -> None:
    """Release N's image ID and env version into the inactive slot, health-checked, then promoted."""
    request = ReleaseRequest.of(project, env, release, lock_wait=lock_wait, break_lock=break_lock)
    for result in controller_releases.rollback_to_release(inventory, request, data):
        report(result)


@click.command()
@click.argument("project")
@env_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@data_option
@inventory_option
def releases(project: str, env: str, as_json: bool, host_data: tuple[str, ...], inventory: str) -> None:
    """PROJECT's releases: number, image and image ID, env version, who, when, slot, health."""
    found = runner.read_facts(
        inventory,
        release_flows.listing,
        names.project_name(project),
        names.environment(env),
        data=parse_data(host_data),
    )[0]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for r in found:
        image_id = (r["image_id"] or "-")[:12]
        version = f" ({r['app_version']})" if r["app_version"] else ""
        env_version = r["env_version"] if r["env_version"] is not None else "-"
        kept = "" if r["tag"] and not r["pruned"] else "  image pruned"
        click.echo(
            f"{r['number']:>4}  {r['time']}  {r['slot']:5}  {r['health']:6}  {r['image']}{version}  {image_id}  "
            f"env v{env_version}  {r['actor']}{kept}"
        )


COMMANDS = (releases,)
