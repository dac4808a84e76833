"""The watch after a promote: the rollback it falls back to, planned from the state the promote
leaves, and the spec the app server's `codeb-watch` runs from. Pure: no host, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain import decisions, names
from codeb_infra.domain.changes import Change
from codeb_infra.domain.decisions import SwitchDecision
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.live import LiveSlots


class WatchLimits(BaseModel):
    """When a watched release fails: health failing ``failures`` checks in a row, or more than
    ``max_5xx`` percent 5xx answers over ``window`` seconds (counted from ``min_requests`` on)."""

    model_config = ConfigDict(frozen=True)

    minutes: float
    interval: float
    failures: int
    max_5xx: float
    window: float
    min_requests: int

    @property
    def bound_seconds(self) -> float:
        """The longest a failing health path is served before the rollback (probes time out after
        at most 5 s each)."""
        return self.failures * (self.interval + min(5.0, max(1.0, self.interval)))


def unit(project: str, env: names.Environment) -> str:
    return f"codeb-watch-{project}-{env.value}"


def fallback(live: LiveSlots, promoted: SwitchDecision, *, now: datetime, grace: timedelta) -> SwitchDecision | None:
    """The rollback a failed watch performs: back to the slot the promote put in grace, expecting
    exactly the record the promote writes. None when there is nothing to fall back to (a first
    promote)."""
    by_path = dict(promoted.pointers)
    after = live.model_copy(
        update={
            "pair": promoted.wanted,
            "existed": True,
            "pointers": {role: by_path.get(path, live.pointers.get(role)) for role, path in live.pointer_paths.items()},
        }
    )
    try:
        decision = decisions.plan_rollback(after, to=None, now=now, grace=grace)
    except CodebError:
        return None
    return decision if decision.plan.changed else None


def announced(promoted: SwitchDecision, rollback: SwitchDecision, minutes: float, unit_name: str) -> SwitchDecision:
    """The promote's plan with the watch it starts, so `--dry` names it too."""
    to = rollback.wanted.active.value if rollback.wanted.active else "-"
    watch = Change(
        host=promoted.plan.host,
        what="watch",
        target=unit_name,
        new=f"{minutes:g} min",
        why=f"rolls back to {to} if the release fails its health path or answers too many 5xx",
    )
    plan = promoted.plan.model_copy(update={"changes": (*promoted.plan.changes, watch)})
    return promoted.model_copy(update={"plan": plan})


def spec(
    live: LiveSlots,
    promoted: SwitchDecision,
    rollback: SwitchDecision,
    limits: WatchLimits,
    paths: dict[str, Any],
) -> dict[str, Any]:
    """What `codeb-watch run --spec` reads: the release, where to ask, the limits and the rollback."""
    if live.entry is None or promoted.wanted.active is None or rollback.wanted.active is None:
        raise CodebError(f"{live.project}/{live.env.value}: nothing promoted to watch")
    slot = promoted.wanted.active
    release = promoted.wanted.record(slot).release
    return {
        "project": live.project,
        "env": live.env.value,
        "domain": live.entry.domain,
        "domains": live.entry.domains,
        "health_path": live.entry.health_path,
        "slot": slot.value,
        "release": release.image if release else None,
        "minutes": limits.minutes,
        "interval": limits.interval,
        "max_failures": limits.failures,
        "max_5xx": limits.max_5xx,
        "window": limits.window,
        "min_requests": limits.min_requests,
        "promoted": decisions.record_of(promoted.wanted),
        "rollback": {
            "to": rollback.wanted.active.value,
            "expect": rollback.expect,
            "record": decisions.record_of(rollback.wanted),
            "pointers": [list(p) for p in rollback.pointers],
        },
        **paths,
    }
