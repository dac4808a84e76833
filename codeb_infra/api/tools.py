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
from codeb_infra.domain import env as domain_env
from codeb_infra.domain import names
from codeb_infra.domain.names import Environment
from codeb_infra.domain.requests import DeployRequest, SlotRequest
from codeb_infra.flows.env import EnvChange
from codeb_infra.flows.releases import ReleaseRequest


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


class PromoteParams(ProjectParams):
    watch: bool = Field(True, description="the app server watches the new release and rolls back on failure")


class RollbackParams(ProjectParams):
    to: str | None = Field(None, description="slot to make active (blue/green)")
    release: int | None = Field(None, ge=1, description="redeploy release N (its image and env version) and promote it")


class EnvSetParams(ProjectParams):
    values: dict[str, str] = Field(description="NAME -> value; a new env version when any value changes")
    deploy: bool = Field(False, description="then redeploy the current image with the new env into the inactive slot")


class EnvUnsetParams(ProjectParams):
    names: list[str] = Field(min_length=1, description="variables to remove")
    deploy: bool = False


class EnvRestoreParams(ProjectParams):
    version: int = Field(ge=1, description="env version to make current again (as a new version)")
    from_backup: bool = Field(False, description="first bring the env store back from the backup server")
    deploy: bool = False


class EnvDiffParams(ProjectParams):
    old: int = Field(ge=1)
    new: int = Field(ge=1)


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


def _rollback(given: dict[str, Any]) -> SlotRequest | ReleaseRequest:
    if given.get("release") is not None:
        return ReleaseRequest.of(given["project"], given.get("env", "production"), given["release"])
    return SlotRequest.from_data({k: v for k, v in given.items() if k != "release"})


def _env_change(given: dict[str, Any]) -> EnvChange:
    project, env = given["project"], given.get("env", "production")
    if "values" in given:
        return EnvChange.of(
            project,
            env,
            set_values=domain_env.assignments(tuple(f"{name}={value}" for name, value in given["values"].items())),
        )
    if "names" in given:
        return EnvChange.of(project, env, unset=tuple(given["names"]))
    return EnvChange.of(project, env, restore=given["version"])


def _project_env(given: dict[str, Any]) -> tuple[str, Environment]:
    return names.project_name(given["project"]), names.environment(given.get("env", "production"))


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
        "Switch the domain to the deployed slot; the previous one enters its grace period. The app "
        "server then watches the new release (watch=false: not) and rolls back when it fails.",
        PromoteParams,
        Role.DEV,
        read_only=False,
        request=_slot(),
    ),
    Tool(
        "rollback",
        "Switch the domain back to the slot in its grace period (no container is touched); with "
        "release N, redeploy that release's image and env version and promote it.",
        RollbackParams,
        Role.DEV,
        read_only=False,
        request=_rollback,
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
        "health_check",
        "Every server, project and backup checked, with consistency between record and reality; "
        "each finding names its fix.",
        NoParams,
        Role.VIEW,
        read_only=True,
    ),
    Tool(
        "releases",
        "A project/env's releases: number, image and image ID, env version, who, when, health.",
        ProjectParams,
        Role.VIEW,
        read_only=True,
        request=_project_env,
    ),
    Tool(
        "env_list",
        "Names in a project's env (no values), those from the master env, the current version.",
        ProjectParams,
        Role.ADMIN,
        read_only=True,
        request=_project_env,
    ),
    Tool(
        "env_history",
        "Every env version: number, time, actor, names added/changed/removed (never values).",
        ProjectParams,
        Role.ADMIN,
        read_only=True,
        request=_project_env,
    ),
    Tool(
        "env_diff",
        "Names added, changed and removed between two env versions.",
        EnvDiffParams,
        Role.ADMIN,
        read_only=True,
        request=_project_env,
    ),
    Tool(
        "env_set",
        "Set variables (a new env version); values never reach a log or the audit log.",
        EnvSetParams,
        Role.ADMIN,
        read_only=False,
        request=_env_change,
    ),
    Tool(
        "env_unset",
        "Remove variables (a new env version).",
        EnvUnsetParams,
        Role.ADMIN,
        read_only=False,
        request=_env_change,
    ),
    Tool(
        "env_restore",
        "Make an older env version current again, as a new version.",
        EnvRestoreParams,
        Role.ADMIN,
        read_only=False,
        request=_env_change,
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
