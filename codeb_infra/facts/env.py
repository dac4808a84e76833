"""The env store's index of one project/env (names, digests, times; never a value)."""

from __future__ import annotations

import json

from pydantic import ValidationError
from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import files as file_commands
from codeb_infra.domain.env import EnvIndex
from codeb_infra.domain.errors import CodebError
from codeb_infra.facts.files import MISSING


class EnvStoreIndex(FactBase[EnvIndex]):
    """``/opt/codeb/env-backup/{project}/{env}/index.json``; no versions when it does not exist."""

    def command(self, path: str) -> StringCommand:
        return file_commands.read_text(path, MISSING)

    def process(self, output: list[str]) -> EnvIndex:
        if output == [MISSING] or not output:
            return EnvIndex()
        try:
            return EnvIndex.model_validate(json.loads("\n".join(output)))
        except (ValueError, ValidationError) as error:
            raise CodebError(
                f"the env store index is not valid ({error.__class__.__name__}): "
                "restore it with `codeb env restore --from-backup`"
            ) from None

    @staticmethod
    def default() -> EnvIndex:
        return EnvIndex()
