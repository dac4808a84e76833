"""The release log of one project/env on the app server."""

from __future__ import annotations

import json

from pydantic import ValidationError
from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import files as file_commands
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.releases import ReleaseLog
from codeb_infra.facts.files import MISSING


class Releases(FactBase[ReleaseLog]):
    """``/opt/codeb/releases/{project}/{env}.json``; no releases when it does not exist."""

    def command(self, path: str) -> StringCommand:
        return file_commands.read_text(path, MISSING)

    def process(self, output: list[str]) -> ReleaseLog:
        if output == [MISSING] or not output:
            return ReleaseLog()
        try:
            return ReleaseLog.model_validate(json.loads("\n".join(output)))
        except (ValueError, ValidationError) as error:
            raise CodebError(f"the release log is not valid ({error.__class__.__name__}): fix or remove it") from None

    @staticmethod
    def default() -> ReleaseLog:
        return ReleaseLog()
