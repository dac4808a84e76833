"""The error types the domain and the controller raise: each message must tell a person what to
do, and each type carries the exit status the `codeb` command ends with (see cli/errors.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class CodebError(Exception):
    """Invalid input or an illegal transition; safe to show to the user as is. Nothing changed."""

    exit_status = 2
    changed_nothing = True


class RunFailed(CodebError):
    """A server could not be reached, or a step on it failed."""

    exit_status = 1
    changed_nothing = False


class PlanStale(RunFailed):
    """The registry records a run planned from changed before it wrote anything (another run
    finished meanwhile); nothing was done, so the run can be planned again."""


class PortTaken(PlanStale):
    """A new project's planned port went to another deploy between the read and the write; nothing
    was written, so the run can be planned again."""


class LockHeld(CodebError):
    """Another run holds the project's deploy lock."""

    exit_status = 4


def host_data_error(error: ValidationError) -> CodebError:
    """One line naming each invalid host data key and why, from pydantic's report."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return CodebError(f"invalid host data: {problems}")
