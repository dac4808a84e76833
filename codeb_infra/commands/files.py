"""Plain file command lines (read, remove)."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted


def read_text(path: str, marker: str) -> StringCommand:
    """Print a file, or the marker when it does not exist (so empty and missing differ)."""
    return command(
        "if",
        "[",
        "-f",
        quoted(path),
        "]",
        ";",
        "then",
        "cat",
        quoted(path),
        ";",
        "else",
        "echo",
        quoted(marker),
        ";",
        "fi",
    )


def remove_files(*paths: str) -> StringCommand:
    return command("rm", "-f", "--", *(quoted(p) for p in paths))
