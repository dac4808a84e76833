"""Changes that take two runs, because the second plans from what the first changed: a rollback
to a release (redeploy it, then promote it) and an env change deployed at once. What the CLI and
the API call; each returns the runs it made."""

from __future__ import annotations

from typing import Any

from codeb_infra import flows
from codeb_infra.controller import runner
from codeb_infra.controller.runner import RunResult
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.flows import env as env_flows
from codeb_infra.flows import releases as release_flows
from codeb_infra.flows.env import EnvChange
from codeb_infra.flows.releases import ReleaseRequest


def rollback_to_release(inventory: str, request: ReleaseRequest, data: dict[str, Any] | None = None) -> list[RunResult]:
    """Release N's image ID and env version into the inactive slot, health-checked, then promoted
    (no promote when the deploy failed or found N already serving)."""
    deployed = runner.run_flow(inventory, release_flows.redeploy, request, data=data)
    if not deployed.ok or not deployed.changed:
        return [deployed]
    promote = SlotRequest(
        project=request.project, env=request.env, lock_wait=request.lock_wait, break_lock=request.break_lock
    )
    return [deployed, runner.run_flow(inventory, flows.promote, promote, data=data)]


def change_env(
    inventory: str, change: EnvChange, *, deploy: bool = False, data: dict[str, Any] | None = None
) -> list[RunResult]:
    """A new env version; with ``deploy``, then the active release's image with it in the inactive slot (preview)."""
    changed = runner.run_flow(inventory, env_flows.change, change, data=data)
    if not deploy or not changed.ok:
        return [changed]
    request = ReleaseRequest(project=change.project, env=change.env)
    return [changed, runner.run_flow(inventory, release_flows.redeploy_current, request, data=data)]
