"""Flows: each reads the live state once, lets the domain decide, then applies operations.

deploy_release, promote, rollback, cleanup, remove_project and status are what the CLI, the deploy
scripts and the API all call; plan_deploy, plan_promote, plan_rollback, plan_cleanup and
plan_remove return the same decision as a `Plan` without changing anything (`--dry`).
"""

from codeb_infra.flows.cleanup import cleanup, plan_cleanup
from codeb_infra.flows.common import is_app_host, utcnow
from codeb_infra.flows.deploy import deploy_release, plan_deploy
from codeb_infra.flows.remove import plan_remove, remove_project
from codeb_infra.flows.status import status
from codeb_infra.flows.switch import plan_promote, plan_rollback, promote, rollback

__all__ = [
    "cleanup",
    "deploy_release",
    "is_app_host",
    "plan_cleanup",
    "plan_deploy",
    "plan_promote",
    "plan_remove",
    "plan_rollback",
    "promote",
    "remove_project",
    "rollback",
    "status",
    "utcnow",
]
