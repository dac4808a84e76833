"""Command builders: the only place that turns arguments into shell command lines."""

from __future__ import annotations

from pyinfra.api import QuoteString, StringCommand


def safe(value: str) -> str:
    """Refuse values that could turn into an option or a second line once on a command line."""
    if not isinstance(value, str) or value.startswith("-") or "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"refusing unsafe command argument {value!r}")
    return value


# One piece of a command line: a literal word, a quoted value or a nested command.
Part = str | QuoteString | StringCommand


def command(*parts: Part) -> StringCommand:
    return StringCommand(*parts)


def quoted(value: str) -> QuoteString:
    return QuoteString(safe(value))
