"""The `codeb` command: thin click commands over the same flows the deploy scripts run.

One module per command group; errors end in cli/errors.py, the one boundary.
"""

from __future__ import annotations

import click

from codeb_infra.cli import audit, data, env, errors, health, keys, migrate, releases, sandbox, servers, slots, version


@click.group()
@click.option("--debug", is_flag=True, help="show the traceback of an unexpected error")
def codeb(debug: bool) -> None:
    """Blue-green, zero-drop deploys on your own servers."""


for command in (
    *slots.COMMANDS,
    *servers.COMMANDS,
    *data.COMMANDS,
    *health.COMMANDS,
    *env.COMMANDS,
    *releases.COMMANDS,
    *version.COMMANDS,
    *keys.COMMANDS,
    *audit.COMMANDS,
    *sandbox.COMMANDS,
    *migrate.COMMANDS,
):
    codeb.add_command(command)


def main() -> None:
    errors.run(codeb)
