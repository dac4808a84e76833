"""The app server's registry files as typed values, and one project/env's snapshot of them."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import files as file_commands
from codeb_infra.commands import state as state_commands
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.registry import ProjectEnv, Projects, SlotPairRecord, SlotTable
from codeb_infra.domain.releases import ReleaseLog
from codeb_infra.facts.files import MISSING
from codeb_infra.facts.podman import CodebContainers, Container

ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(model: type[ModelT], path: str, output: list[str]) -> ModelT:
    if output == [MISSING] or not output:
        return model()
    try:
        return model.model_validate(json.loads("\n".join(output)))
    except (ValueError, ValidationError) as error:
        raise CodebError(
            f"{path} is not a valid registry file ({error.__class__.__name__}): fix or restore it"
        ) from None


class ProjectRegistry(FactBase[Projects]):
    """ssot.json: every project's domain, container port, health path and ports."""

    def command(self, registry_dir: str) -> StringCommand:
        return file_commands.read_text(f"{registry_dir}/ssot.json", MISSING)

    def process(self, output: list[str]) -> Projects:
        return _parse(Projects, "ssot.json", output)

    @staticmethod
    def default() -> Projects:
        return Projects()


class SlotRegistry(FactBase[SlotTable]):
    """slots.json: the blue/green records of every project and environment."""

    def command(self, registry_dir: str) -> StringCommand:
        return file_commands.read_text(f"{registry_dir}/slots.json", MISSING)

    def process(self, output: list[str]) -> SlotTable:
        return _parse(SlotTable, "slots.json", output)

    @staticmethod
    def default() -> SlotTable:
        return SlotTable()


class Snapshot(BaseModel):
    """One project/env as `codeb-state snapshot` prints it: registry records, pointers, containers
    and, when asked for, the release log (None: not asked for, or none yet)."""

    model_config = ConfigDict(frozen=True)

    tool: str
    project: ProjectEnv | None = None
    slots: SlotPairRecord | None = None
    pointers: dict[str, str | None] = {}
    containers: list[Container] = []
    releases: ReleaseLog | None = None


class SlotSnapshot(FactBase[Snapshot | None]):
    """What a switch needs in one round trip; None when codeb-state is missing or older than `snapshot`."""

    def command(
        self, tool: str, registry_dir: str, project: str, env: str, pointers: tuple[str, ...], releases: str = ""
    ) -> StringCommand:
        return state_commands.snapshot(
            tool, registry=registry_dir, project=project, env=env, pointers=list(pointers), releases=releases
        )

    def process(self, output: list[str]) -> Snapshot | None:
        text = "\n".join(output).strip()
        if not text or text == state_commands.SNAPSHOT_UNAVAILABLE:
            return None
        try:
            raw = json.loads(text)
            containers = CodebContainers().process([json.dumps(raw.pop("containers", []))])
            return Snapshot.model_validate({**raw, "containers": containers})
        except (ValueError, ValidationError, AttributeError) as error:
            raise CodebError(
                f"could not read codeb-state snapshot ({error.__class__.__name__}): fix or restore the registry"
            ) from None
