"""A text file's content, or None when it does not exist."""

from __future__ import annotations

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import files as file_commands

MISSING = "__codeb_missing__"


class TextFile(FactBase[str | None]):
    """Content of a text file (None when absent); used for Caddy sites and upstream pointers."""

    def command(self, path: str) -> StringCommand:
        return file_commands.read_text(path, MISSING)

    def process(self, output: list[str]) -> str | None:
        if output == [MISSING]:
            return None
        return "\n".join(output)


class CaddySite(TextFile):
    """A project's Caddy site file content."""


class UpstreamPointer(TextFile):
    """The address a Caddy site currently sends requests to (one line, host:port)."""

    def process(self, output: list[str]) -> str | None:
        text = super().process(output)
        return None if text is None else text.strip()
