"""codeb-infra's one version and what each server says it runs: the version record bootstrap
writes (/opt/codeb/version.json) and the verdict of comparing it with this controller's. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.errors import CodebError

VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
PARTS = ("major", "minor", "patch")


def bumped(version: str, part: str) -> str:
    """``version`` with ``part`` (major, minor, patch) raised and the parts after it reset."""
    found = VERSION.fullmatch(version)
    if found is None:
        raise CodebError(f"invalid version {version!r}: expected MAJOR.MINOR.PATCH like 1.4.2")
    if part not in PARTS:
        raise CodebError(f"invalid part {part!r}: expected major, minor or patch")
    numbers = [int(n) for n in found.groups()]
    index = PARTS.index(part)
    numbers = [*numbers[:index], numbers[index] + 1, *([0] * (2 - index))]
    return ".".join(map(str, numbers))


class ServerVersion(BaseModel):
    """/opt/codeb/version.json: the codeb-infra version a server was bootstrapped with, its roles,
    and the SHA-256 of each server-side tool installed there."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: str
    roles: tuple[str, ...]
    tools: dict[str, str]  # tool path -> sha256


def record(version: str, roles: list[str], tools: Mapping[str, str]) -> str:
    return (
        json.dumps(
            {"version": version, "roles": sorted(roles), "tools": dict(sorted(tools.items()))}, indent=1, sort_keys=True
        )
        + "\n"
    )


def mismatches(
    controller: str,
    wanted_tools: Mapping[str, str],
    recorded: ServerVersion | None,
    installed: Mapping[str, str | None],
) -> list[str]:
    """Why a server does not run this controller's version (empty: it does). ``wanted_tools`` are
    the digests this controller would install, ``installed`` what the server's files hash to."""
    if recorded is None:
        return ["no /opt/codeb/version.json (bootstrap it)"]
    problems = []
    if recorded.version != controller:
        problems.append(f"bootstrapped with {recorded.version}, this controller is {controller}")
    for path, digest in sorted(wanted_tools.items()):
        if installed.get(path) is None:
            problems.append(f"{path} is missing")
        elif installed[path] != digest:
            problems.append(f"{path} differs from this controller's ({(installed[path] or '')[:12]} != {digest[:12]})")
    return problems
