"""`codeb keys create|list|revoke`: the API's keys, managed over SSH on the app server."""

from __future__ import annotations

import json
from typing import Any

import click

from codeb_infra.api.keys import key_name
from codeb_infra.cli.options import inventory_option
from codeb_infra.commands import api as api_commands
from codeb_infra.controller import runner
from codeb_infra.domain import names
from codeb_infra.domain.errors import CodebError, RunFailed
from codeb_infra.roles.app import API_PYTHON


def admin(inventory: str, *arguments: str) -> str:
    """Run the app server's `codeb_infra.api.admin` with ``arguments``; its stdout."""
    result = runner.run_command(inventory, "app", lambda _: api_commands.admin(API_PYTHON, *arguments))
    if not result.ok:
        said = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        error = CodebError if "invalid" in said[0] or "no API key with id" in said[0] else RunFailed
        raise error(f"on {result.host}: {said[0]}")
    return result.stdout


def _describe(key: dict[str, Any]) -> str:
    projects = ",".join(key["projects"]) or "all projects"
    state = f"revoked {key['revoked']}" if key["revoked"] else f"expires {key['expires'] or 'never'}"
    return (
        f"{key['id']}  {key['name']:20}  {key['role']:5}  {projects:20}  created {key['created']}  {state}"
        f"  last used {key['last_used'] or '-'}"
    )


@click.group()
def keys() -> None:
    """API keys: codeb_{role}_{token}, kept on the app server only as keyed hashes."""


@keys.command("create")
@click.option("--role", type=click.Choice(["admin", "dev", "view"]), required=True)
@click.option("--project", "projects", multiple=True, help="limit the key to this project (repeat for several)")
@click.option("--expires", type=float, default=None, metavar="DAYS", help="the key stops working after DAYS days")
@click.option("--name", default=None, help="a label, e.g. 'ci shop'")
@inventory_option
def create(role: str, projects: tuple[str, ...], expires: float | None, name: str | None, inventory: str) -> None:
    """Make a key; it is printed once, as the last line."""
    for project in projects:
        names.project_name(project)
    if name:
        key_name(name)
    if expires is not None and not 0 < expires <= 3650:
        raise CodebError(f"invalid --expires {expires:g}: expected 1 to 3650 days")
    arguments = ["keys-create", "--role", role, *(a for p in projects for a in ("--project", p))]
    if expires is not None:
        arguments += ["--expires", f"{expires:g}"]
    if name:
        arguments += ["--name", name]
    record_line, key = admin(inventory, *arguments).strip().splitlines()[-2:]
    click.echo(f"created {_describe(json.loads(record_line))}")
    click.echo("the key (shown only now):", err=True)
    click.echo(key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@inventory_option
def list_keys(as_json: bool, inventory: str) -> None:
    """Every key's id, name, role, projects, dates (never the key itself)."""
    found = json.loads(admin(inventory, "keys-list"))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for key in found:
        click.echo(_describe(key))


@keys.command("revoke")
@click.argument("key_id")
@inventory_option
def revoke(key_id: str, inventory: str) -> None:
    """Revoke the key with id KEY_ID (from `codeb keys list`)."""
    click.echo(f"revoked {_describe(json.loads(admin(inventory, 'keys-revoke', key_id)))}")


COMMANDS = (keys,)
