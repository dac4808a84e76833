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


def report(*, key: str, known_hosts: str, user: str, address: str, reports: list[str]) -> StringCommand:
    """Ask a server for its reports with the API's report key (its forced command answers); never
    fails, so ssh's own complaint (a refused key, a dead link) is the output instead."""
    return command(
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        quoted(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        quoted(f"UserKnownHostsFile={known_hosts}"),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
        "-l",
        quoted(user),
        "--",
        quoted(address),
        *(quoted(r) for r in reports),
        "2>&1",
        "||",
        "true",
    )
