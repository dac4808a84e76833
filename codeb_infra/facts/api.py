"""What the API's installation on the app server looks like: the server's Python, and the digest
of the wheelhouse its virtualenv was last built from."""

from __future__ import annotations

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import api as api_commands
from codeb_infra.commands import files as file_commands
from codeb_infra.facts.files import MISSING


class PythonRelease(FactBase[str]):
    """``3.13``: the major.minor of the server's python3."""

    def command(self) -> StringCommand:
        return api_commands.python_release()

    def process(self, output: list[str]) -> str:
        return output[0].strip()


class VenvDigest(FactBase[str | None]):
    """The wheelhouse digest recorded in a virtualenv at install time (None: no or unfinished install)."""

    def command(self, venv: str) -> StringCommand:
        return file_commands.read_text(api_commands.digest_file(venv), MISSING)

    def process(self, output: list[str]) -> str | None:
        return None if output == [MISSING] or not output else output[0].strip()
