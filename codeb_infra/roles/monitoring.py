"""What every server gets for health checks and monitoring: the codeb-health reader."""

from __future__ import annotations

from pathlib import Path

from pyinfra.api import deploy
from pyinfra.operations import files

from codeb_infra.commands.health import HEALTH_TOOL

HEALTH_SOURCE = Path(__file__).resolve().parent.parent / "remote" / "codeb_health.py"


@deploy("Monitoring")
def monitoring() -> None:
    files.put(name="codeb-health (what `codeb health` reads)", src=str(HEALTH_SOURCE), dest=HEALTH_TOOL,
              user="root", group="root", mode="755", create_remote_dir=True)
