"""ssh-keygen command lines for keys made on the server, owned by the account that uses them."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted


def keygen(*, user: str, path: str, comment: str) -> StringCommand:
    """A new ed25519 key without passphrase at `path`, made as `user`; an existing key is kept."""
    return command(
        "[",
        "-f",
        quoted(path),
        "]",
        "||",
        "runuser",
        "-u",
        quoted(user),
        "--",
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "''",
        "-C",
        quoted(comment),
        "-f",
        quoted(path),
    )


def public_from_private(*, user: str, path: str) -> StringCommand:
    """Write `path.pub` again from the private key."""
    return command(
        "runuser",
        "-u",
        quoted(user),
        "--",
        "ssh-keygen",
        "-y",
        "-f",
        quoted(path),
        ">",
        quoted(f"{path}.pub"),
        "&&",
        "chown",
        quoted(user),
        quoted(f"{path}.pub"),
    )
