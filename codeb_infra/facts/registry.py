"""The app server's registry files as typed values."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import files as file_commands
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.registry import Projects, SlotTable
from codeb_infra.facts.files import MISSING

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
