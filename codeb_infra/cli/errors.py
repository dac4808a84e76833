"""The one error boundary of the `codeb` command: every failure a user can cause or meet ends in
one line that says what to do, and one documented exit status. A traceback only with --debug.

Exit statuses:
  0  done (or nothing to do)
  1  failed on a server (unreachable, a step failed, a check that found problems)
  2  bad input: nothing was changed
  3  changes pending (--expect-no-changes)
  4  the project's deploy lock is held by another run
"""

from __future__ import annotations

import sys
import traceback
from enum import IntEnum
from typing import NoReturn

import click
from pyinfra.api.exceptions import PyinfraError

from codeb_infra.domain.errors import CodebError


class ExitStatus(IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    CHANGES_PENDING = 3
    LOCKED = 4
    INTERRUPTED = 130


def fail(message: str, status: ExitStatus | int) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(int(status))


def run(group: click.Group, args: list[str] | None = None) -> NoReturn:
    """Run the click group and translate whatever escapes it."""
    argv = sys.argv[1:] if args is None else args
    debug = "--debug" in argv
    try:
        group.main(args=argv, prog_name="codeb", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", ExitStatus.INTERRUPTED)
    except click.ClickException as error:
        error.show()
        sys.exit(ExitStatus.BAD_INPUT if isinstance(error, click.UsageError) else ExitStatus.FAILED)
    except CodebError as error:
        if debug:
            traceback.print_exc()
        suffix = " (nothing was changed)" if error.changed_nothing and "nothing was changed" not in str(error) else ""
        fail(f"{error}{suffix}", error.exit_status)
    except PyinfraError as error:
        if debug:
            traceback.print_exc()
        fail(f"{error} (pyinfra)", ExitStatus.FAILED)
    except KeyboardInterrupt:
        fail("interrupted", ExitStatus.INTERRUPTED)
    except SystemExit:
        raise
    except Exception as error:  # the boundary: anything else is a bug, said in one line
        if debug:
            traceback.print_exc()
        fail(
            f"unexpected {type(error).__name__}: {error} (run again with --debug for the traceback)", ExitStatus.FAILED
        )
    sys.exit(ExitStatus.OK)
