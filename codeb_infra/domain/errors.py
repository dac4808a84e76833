"""The one error type the domain raises: its message must tell a person what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class CodebError(Exception):
    """Invalid input or an illegal transition; safe to show to the user as is."""


def host_data_error(error: "ValidationError") -> CodebError:
    """One line naming each invalid host data key and why, from pydantic's report."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return CodebError(f"invalid host data: {problems}")
