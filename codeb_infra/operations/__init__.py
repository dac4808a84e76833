"""Operations: thin and idempotent; each reads live state through a fact and yields only what differs."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeAlias

from pyinfra.api.command import PyinfraCommand

# What an operation's body yields: commands for pyinfra to run (a plain string is a shell command).
Commands: TypeAlias = Generator[PyinfraCommand | str, Any, None]
