"""`codeb env set|unset|import|list|get|history|diff|restore`: a project's versioned env file."""

from __future__ import annotations

import json
import sys

import click

from codeb_infra.cli.options import data_option, env_option, inventory_option, parse_data, report
from codeb_infra.controller import releases, runner
from codeb_infra.domain import env as domain
from codeb_infra.domain import names
from codeb_infra.domain.errors import CodebError
from codeb_infra.flows import env as flows
from codeb_infra.flows.env import EnvChange
from codeb_infra.flows.provision import provision as provision_flow


@click.group("env")
def env_group() -> None:
    """A project's env file: every change is a version, kept on the app and the backup server."""


def _apply(change: EnvChange, inventory: str, host_data: tuple[str, ...], deploy: bool) -> None:
    for result in releases.change_env(inventory, change, deploy=deploy, data=parse_data(host_data)):
        report(result)


def _read_file(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise CodebError(f"cannot read {path}: {error.__class__.__name__}") from None


def _deploy_option(func):  # type: ignore[no-untyped-def]
    return click.option(
        "--deploy",
        is_flag=True,
        help="then redeploy the current image into the inactive slot with the new env (preview)",
    )(func)


@env_group.command("set")
@click.argument("project")
@click.argument("pairs", nargs=-1, required=True, metavar="NAME=VALUE...")
@env_option
@_deploy_option
@data_option
@inventory_option
def env_set(
    project: str, pairs: tuple[str, ...], env: str, deploy: bool, host_data: tuple[str, ...], inventory: str
) -> None:
    """Set variables of PROJECT's env (a new version when any value changes)."""
    change = EnvChange.of(project, env, set_values=domain.assignments(pairs))
    _apply(change, inventory, host_data, deploy)


@env_group.command("unset")
@click.argument("project")
@click.argument("keys", nargs=-1, required=True, metavar="NAME...")
@env_option
@_deploy_option
@data_option
@inventory_option
def env_unset(
    project: str, keys: tuple[str, ...], env: str, deploy: bool, host_data: tuple[str, ...], inventory: str
) -> None:
    """Remove variables from PROJECT's env."""
    _apply(EnvChange.of(project, env, unset=keys), inventory, host_data, deploy)


@env_group.command("import")
@click.argument("project")
@click.argument("file", metavar="FILE")
@env_option
@_deploy_option
@data_option
@inventory_option
def env_import(project: str, file: str, env: str, deploy: bool, host_data: tuple[str, ...], inventory: str) -> None:
    """Set every NAME=VALUE line of FILE (`-`: standard input) in PROJECT's env."""
    values = domain.parse(_read_file(file), source=file if file != "-" else "standard input")
    _apply(EnvChange.of(project, env, set_values=values), inventory, host_data, deploy)


@env_group.command("restore")
@click.argument("project")
@click.option(
    "--version",
    "version",
    required=True,
    help="env version number to make current again, or `master`: the master env from the storage server",
)
@click.option("--from-backup", is_flag=True, help="first bring the env store back from the backup server")
@env_option
@_deploy_option
@data_option
@inventory_option
def env_restore(
    project: str, version: str, from_backup: bool, env: str, deploy: bool, host_data: tuple[str, ...], inventory: str
) -> None:
    """Make an older version current again (as a new version); `--from-backup` when the app server lost them."""
    if version == "master":
        # The master env's source is the storage server (the project's role and Redis user):
        # provisioning composes it there again and copies it to the app server when it differs.
        report(runner.run_flow(inventory, provision_flow, names.project_name(project), every_host=True))
        return
    change = EnvChange.of(project, env, restore=domain.version_number(version))
    if from_backup:
        report(
            runner.run_flow(inventory, flows.fetch_from_backup, change.project, change.env, data=parse_data(host_data))
        )
    _apply(change, inventory, host_data, deploy)


def _one(inventory: str, host_data: tuple[str, ...], reader, *args):  # type: ignore[no-untyped-def]
    return runner.read_facts(inventory, reader, *args, data=parse_data(host_data))[0]


@env_group.command("list")
@click.argument("project")
@env_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@data_option
@inventory_option
def env_list(project: str, env: str, as_json: bool, host_data: tuple[str, ...], inventory: str) -> None:
    """Names in PROJECT's env (no values), those from the master env, the current version."""
    found = _one(inventory, host_data, flows.listing, names.project_name(project), names.environment(env))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    digest = (found["digest"] or "")[:16]
    click.echo(f"{found['project']}/{found['env']}  env version {found['version'] or '-'}  digest {digest or '-'}")
    for name in found["names"]:
        click.echo(f"  {name}")
    for name in found["master_names"]:
        click.echo(f"  {name}  (master env)")
    if found["not_on_backup_server"]:
        click.secho(f"NOT ON THE BACKUP SERVER: version(s) {found['not_on_backup_server']}", fg="red", bold=True)


@env_group.command("get")
@click.argument("project")
@click.argument("key")
@env_option
@data_option
@inventory_option
def env_get(project: str, key: str, env: str, host_data: tuple[str, ...], inventory: str) -> None:
    """Print one variable's value (admin)."""
    found = _one(inventory, host_data, flows.value, names.project_name(project), names.environment(env), key)
    if found is None:
        raise CodebError(f"{key} is not set in {project}/{env}")
    click.echo(found)


@env_group.command("history")
@click.argument("project")
@env_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@data_option
@inventory_option
def env_history(project: str, env: str, as_json: bool, host_data: tuple[str, ...], inventory: str) -> None:
    """Every version: number, time, actor, names added/changed/removed (never values)."""
    versions = _one(inventory, host_data, flows.history, names.project_name(project), names.environment(env))
    if as_json:
        click.echo(json.dumps(versions, indent=2))
        return
    for v in versions:
        what = " ".join(
            [*(f"+{n}" for n in v["added"]), *(f"~{n}" for n in v["changed"]), *(f"-{n}" for n in v["removed"])]
        )
        restored = f" (restore of {v['restored_from']})" if v["restored_from"] else ""
        click.echo(
            f"{v['version']:>4}  {v['time']}  {v['actor']}  {what or '(no names changed)'}{restored}"
            + ("" if v["shipped"] else "  NOT ON BACKUP SERVER")
        )


@env_group.command("diff")
@click.argument("project")
@click.argument("old", metavar="V1")
@click.argument("new", metavar="V2")
@env_option
@data_option
@inventory_option
def env_diff(project: str, old: str, new: str, env: str, host_data: tuple[str, ...], inventory: str) -> None:
    """Names added, changed and removed from version V1 to V2."""
    found = _one(
        inventory,
        host_data,
        flows.version_diff,
        names.project_name(project),
        names.environment(env),
        domain.version_number(old),
        domain.version_number(new),
    )
    for sign, listed in (("+", found.added), ("~", found.changed), ("-", found.removed)):
        for name in listed:
            click.echo(f"{sign}{name}")


COMMANDS = (env_group,)
