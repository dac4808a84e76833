"""Turn domain errors into pyinfra errors, so the CLI prints one clear line instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyinfra.api.exceptions import PyinfraError

from codeb_infra.domain.errors import CodebError


class CodebDeployError(PyinfraError):
    """A CodebError raised while preparing a deploy; nothing has been changed."""


@contextmanager
def clear_errors() -> Iterator[None]:
    try:
        yield
    except CodebError as error:
        raise CodebDeployError(f"{error} (nothing was changed)") from None
