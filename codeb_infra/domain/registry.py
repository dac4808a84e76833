"""The registry the app server keeps: projects (ssot.json) and slot state (slots.json)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.slots import SlotPair, SlotRecord


class ProjectEnv(BaseModel):
    """How one project/env is reached; ports are fixed once allocated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    domain: str
    container_port: int
    health_path: str
    ports: dict[Slot, int]
    aliases: tuple[str, ...] = ()  # custom domains served like the main one

    @property
    def domains(self) -> list[str]:
        return [self.domain, *self.aliases]


class Projects(BaseModel):
    """ssot.json: project → environment → settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    projects: dict[str, dict[Environment, ProjectEnv]] = {}

    def get(self, project: str, env: Environment) -> ProjectEnv | None:
        return self.projects.get(project, {}).get(env)

    def require(self, project: str, env: Environment) -> ProjectEnv:
        found = self.get(project, env)
        if found is None:
            raise CodebError(f"unknown project {project}/{env.value}: deploy it first")
        return found

    def taken_ports(self, *, besides: tuple[str, Environment] | None = None) -> set[int]:
        return {
            port
            for name, envs in self.projects.items()
            for env, conf in envs.items()
            if (name, env) != besides
            for port in conf.ports.values()
        }

    def domain_owner(self, domain: str) -> tuple[str, Environment] | None:
        for name, envs in self.projects.items():
            for env, conf in envs.items():
                if domain in conf.domains:
                    return name, env
        return None

    def with_entry(self, project: str, env: Environment, entry: ProjectEnv) -> Projects:
        envs = dict(self.projects.get(project, {}))
        envs[env] = entry
        return self.model_copy(update={"projects": {**self.projects, project: envs}})


class SlotPairRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    blue: SlotRecord = SlotRecord()
    green: SlotRecord = SlotRecord()


class SlotTable(BaseModel):
    """slots.json: project → environment → blue/green records."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    slots: dict[str, dict[Environment, SlotPairRecord]] = {}

    def pair(self, project: str, env: Environment) -> SlotPair:
        record = self.slots.get(project, {}).get(env, SlotPairRecord())
        return SlotPair(project=project, env=env, blue=record.blue, green=record.green)

    def has(self, project: str, env: Environment) -> bool:
        return env in self.slots.get(project, {})


def pair_record(pair: SlotPair) -> SlotPairRecord:
    return SlotPairRecord(blue=pair.blue, green=pair.green)
