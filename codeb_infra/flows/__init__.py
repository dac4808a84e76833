"""Flows: each reads the live state once, lets the domain decide, then applies operations.

deploy_release, promote, rollback, cleanup, remove_project and status are what the CLI, the deploy
scripts and the API all call.
"""

from codeb_infra.flows.cleanup import cleanup
from codeb_infra.flows.common import is_app_host, utcnow
from codeb_infra.flows.deploy import deploy_release
from codeb_infra.flows.remove import remove_project
from codeb_infra.flows.status import status
from codeb_infra.flows.switch import promote, rollback

__all__ = ["cleanup", "deploy_release", "is_app_host", "promote", "remove_project", "rollback", "status", "utcnow"]
