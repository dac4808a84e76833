"""The app server's watch of a promoted release: started by the promote's `codeb-state switch`,
ended by the next switch, or here by a remove."""

from __future__ import annotations

from pyinfra.api import operation

from codeb_infra.commands import watch as watch_commands
from codeb_infra.operations import Commands


@operation(is_idempotent=False)
def watch_ended(*, unit: str) -> Commands:
    """
    End the watch of a project/env if one runs (a remove); none running is no error.

    + unit: the transient systemd unit, ``codeb-watch-{project}-{env}``

    **Example:**

    .. code:: python

        watch.watch_ended(unit="codeb-watch-myapp-production")
    """
    yield watch_commands.stop(unit)
