"""Host port allocation: the historic hash when it is free, never a collision."""

from __future__ import annotations

from collections.abc import Iterable

from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment

RANGE_SIZE = 500
RANGE_START = {Environment.PRODUCTION: 4000, Environment.STAGING: 4500}


def port_range(env: Environment) -> range:
    start = RANGE_START[env]
    return range(start, start + RANGE_SIZE)


def historic_base(project: str, env: Environment) -> int:
    """The formula the system always used: sum of character codes mod 500, plus the range start."""
    return RANGE_START[env] + sum(ord(c) for c in project) % RANGE_SIZE


def allocate_base(project: str, env: Environment, taken: Iterable[int]) -> int:
    """First free (base, base+1) pair inside the environment's range, probing from the historic base.

    Blue runs on base and green on base + 1, so both must be free and both inside the range
    (a base at the range's last port would put green into the next environment's range).
    """
    used = set(taken)
    ports = port_range(env)
    start = historic_base(project, env) - ports.start
    for offset in range(RANGE_SIZE):
        base = ports.start + (start + offset) % RANGE_SIZE
        if base + 1 in ports and base not in used and base + 1 not in used:
            return base
    raise CodebError(
        f"no free port pair left for {project}/{env.value} in {ports.start}-{ports.stop - 1}: "
        "remove unused projects first"
    )
