"""The app server's watch of a promoted release: started by a promote, ended by the next switch."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

from pyinfra.api import operation
from pyinfra.operations import files

from codeb_infra.commands import watch as watch_commands
from codeb_infra.operations import Commands


@operation(is_idempotent=False)
def release_watch(*, unit: str, tool: str, spec_path: str, spec: dict[str, Any] | None = None) -> Commands:
    """
    Start the watch of a release just promoted (``spec``: what `codeb-watch run` reads), replacing
    any watch of the same project/env, or end it (``spec`` None: a remove). A promote calls it only
    when its switch changed something, so a re-run that changes nothing starts no second watch; a
    rollback need not call it, as a watch ends by itself once slots.json moves on.

    + unit: the transient systemd unit, ``codeb-watch-{project}-{env}``
    + tool: codeb-watch on the server
    + spec_path: where the spec is written (no secret: names, paths, limits, the planned rollback)

    **Example:**

    .. code:: python

        watch.release_watch(unit="codeb-watch-myapp-production", tool="/opt/codeb/bin/codeb-watch",
            spec_path="/opt/codeb/watch/myapp.production.json", spec=spec)
    """
    if spec is None:
        yield watch_commands.stop(unit)
        return
    text = json.dumps(spec, indent=1, sort_keys=True) + "\n"
    yield from files.put._inner(src=StringIO(text), dest=spec_path, mode="644", create_remote_dir=True)
    yield watch_commands.start(unit, tool=tool, spec=spec_path)
