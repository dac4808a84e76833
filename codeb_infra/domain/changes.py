"""A plan: what a run will change, on which host, from what to what and why. Flows print it under
`--dry` and apply it otherwise; `codeb bootstrap --dry` fills one from pyinfra's own change
detection."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Change(BaseModel):
    """One change on one host: `what` is the kind (pointer, container, slot record, registry entry,
    DNS records, Caddy site, file, operation), `target` the thing itself."""

    model_config = ConfigDict(frozen=True)

    host: str
    what: str
    target: str
    old: str | None = None
    new: str | None = None
    why: str = ""

    def line(self) -> str:
        moved = f": {self.old or '-'} -> {self.new or '-'}" if (self.old, self.new) != (None, None) else ""
        because = f" ({self.why})" if self.why else ""
        return f"[{self.host}] {self.what} {self.target}{moved}{because}"


class Plan(BaseModel):
    """The changes of one action on one host (none: the run would change nothing)."""

    model_config = ConfigDict(frozen=True)

    action: str
    host: str
    changes: tuple[Change, ...] = ()
    note: str = ""  # why nothing changes, or what the run also does that changes nothing (a health check)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def lines(self) -> list[str]:
        head = f"{self.action} on {self.host}: " + (f"{len(self.changes)} change(s)" if self.changes else "no change")
        return [head + (f" ({self.note})" if self.note else ""), *(f"  {c.line()}" for c in self.changes)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "host": self.host,
            "changed": self.changed,
            "note": self.note,
            "changes": [c.model_dump() for c in self.changes],
        }
