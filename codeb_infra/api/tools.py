"""The one list of tools that `POST /api/tool` and `/mcp` both serve: each tool's parameters (the
CLI's own request models validate them), the least role it needs, whether it only reads or destroys,
and the function that runs it, which calls the same flows the CLI and the deploy scripts run.

Flow tools run in a worker process (see worker.py); `in_api` tools (keys, audit) answer from the
API process itself. A new tool is one `register(Tool(...))` call, e.g. `health_check`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from codeb_infra.api.keys import Role
from codeb_infra.domain.requests import DeployRequest, SlotRequest


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(_Params):
    pass


class ProjectParams(_Params):
    project: str = Field(description="project name, e.g. myapp")
    env: str = Field("production", description="production or staging")


class DeployParams(ProjectParams):
    image: str = Field(description="image reference the app server can pull, e.g. registry.example.com/app:1.2")
    container_port: int = 3000
    health_path: str = "/health"
    domain: str | None = Field(None, description="main domain (default: PROJECT.BASE_DOMAIN)")
    aliases: list[str] | None = Field(None, description="custom domains served like the main one")
    force: bool = Field(False, description="deploy over a slot in its grace period")


class RollbackParams(ProjectParams):
    to: str | None = Field(None, description="slot to make active (blue/green)")


class ForceParams(ProjectParams):
    force: bool = False


class LogsParams(ProjectParams):
    slot: str = Field(description="blue or green")
    lines: int = Field(100, ge=1, le=2000)


class AuditParams(_Params):
    project: str | None = None
    since: str | None = Field(None, description="ISO time, e.g. 2026-12-01T00:00:00+00:00")
    limit: int = Field(200, ge=1, le=5000)


class KeyCreateParams(_Params):
    role: str = Field(description="admin, dev or view")
    projects: list[str] = Field(default_factory=list, description="projects the key is limited to (none: all)")
    expires_days: float | None = None
    name: str | None = None


class KeyRevokeParams(_Params):
    id: str


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: type[BaseModel]
    role: Role
    read_only: bool
    destructive: bool = False
    request: Callable[[dict[str, Any]], Any] | None = None
    """Turns validated params into the flow's own request (DeployRequest, SlotRequest): the CLI's validation."""
    in_api: bool = False
    """Answered by the API process (keys, audit) rather than a worker running a flow."""

    def validate(self, params: dict[str, Any]) -> tuple[BaseModel, Any]:
        model = self.params.model_validate(params)
        given = model.model_dump(exclude_none=True)
        return model, self.request(given) if self.request else None

    @property
    def mutates(self) -> bool:
        return not self.read_only


TOOLS: dict[str, Tool] = {}


def register(tool: Tool) -> Tool:
    if tool.name in TOOLS:
        raise ValueError(f"tool {tool.name} registered twice")
    TOOLS[tool.name] = tool
    return tool


def _slot(**fixed: Any) -> Callable[[dict[str, Any]], SlotRequest]:
    return lambda given: SlotRequest.from_data({**given, **fixed})


for _tool in (
    Tool(
        "list_projects",
        "Projects and environments on the app server, with their domain and active slot.",
        NoParams,
        Role.VIEW,
        read_only=True,
    ),
    Tool(
        "slot_status",
        "One project/env's slots as recorded and as running.",
        ProjectParams,
        Role.VIEW,
        read_only=True,
        request=_slot(),
    ),
    Tool(
        "deploy_project",
        "Deploy an image into the inactive slot, health-check it and point the preview domain at it.",
        DeployParams,
        Role.DEV,
        read_only=False,
        request=DeployRequest.from_data,
    ),
    Tool(
        "promote",
        "Switch the domain to the deployed slot; the previous one enters its grace period.",
        ProjectParams,
        Role.DEV,
        read_only=False,
        request=_slot(),
    ),
    Tool(
        "rollback",
        "Switch the domain back to the slot in its grace period (no container is touched).",
        RollbackParams,
        Role.DEV,
        read_only=False,
        request=_slot(),
    ),
    Tool(
        "cleanup",
        "Remove slots whose grace period ended (force: any slot in grace, and failed ones).",
        ForceParams,
        Role.DEV,
        read_only=False,
        destructive=True,
        request=_slot(),
    ),
    Tool(
        "remove_project",
        "Take a project/env off the server: containers, site, DNS records, registry.",
        ForceParams,
        Role.ADMIN,
        read_only=False,
        destructive=True,
        request=_slot(),
    ),
    Tool(
        "logs",
        "The last lines a slot's container printed.",
        LogsParams,
        Role.DEV,
        read_only=True,
        request=lambda given: SlotRequest.from_data(
            {k: v for k, v in given.items() if k not in ("slot", "lines")} | {"to": given["slot"]}
        ),
    ),
    Tool(
        "backup_status",
        "Freshness of base backups, WAL, dumps, Redis snapshots and the last restore drill.",
        NoParams,
        Role.ADMIN,
        read_only=True,
    ),
    Tool(
        "audit_log",
        "Rows of the audit log (a key limited to projects sees only theirs).",
        AuditParams,
        Role.VIEW,
        read_only=True,
        in_api=True,
    ),
    Tool(
        "keys_create", "Make an API key; it is shown once.", KeyCreateParams, Role.ADMIN, read_only=False, in_api=True
    ),
    Tool("keys_list", "API keys (never the keys themselves).", NoParams, Role.ADMIN, read_only=True, in_api=True),
    Tool(
        "keys_revoke", "Revoke an API key.", KeyRevokeParams, Role.ADMIN, read_only=False, destructive=True, in_api=True
    ),
):
    register(_tool)
