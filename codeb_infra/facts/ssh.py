"""SSH public keys on a server (a user's key, or the server's own host key)."""

from __future__ import annotations

from codeb_infra.config.roles import public_key
from codeb_infra.facts.files import TextFile


class SshPublicKey(TextFile):
    """The one key line of a `.pub` file, None when the file does not exist."""

    def process(self, output: list[str]) -> str | None:
        text = super().process(output)
        if text is None:
            return None
        return public_key(text.strip())
