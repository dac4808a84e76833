"""The slot state machine of one project and environment, as pure transitions."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot


class SlotState(StrEnum):
    EMPTY = "empty"
    DEPLOYED = "deployed"
    ACTIVE = "active"
    GRACE = "grace"
    FAILED = "failed"


class Release(BaseModel):
    """What runs in a slot and how to reach it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    port: int
    container_port: int
    health_path: str
    image_id: str | None = None  # known when the image was copied from the controller


class SlotRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    state: SlotState = SlotState.EMPTY
    release: Release | None = None
    deployed_at: datetime | None = None
    promoted_at: datetime | None = None
    grace_until: datetime | None = None
    failure: str | None = None


class SlotPair(BaseModel):
    """Blue and green of one project/env; every transition returns a new pair."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    env: Environment
    blue: SlotRecord = SlotRecord()
    green: SlotRecord = SlotRecord()

    def record(self, slot: Slot) -> SlotRecord:
        return self.blue if slot is Slot.BLUE else self.green

    def with_record(self, slot: Slot, record: SlotRecord) -> SlotPair:
        return self.model_copy(update={slot.value: record})

    @property
    def active(self) -> Slot | None:
        return next((s for s in Slot if self.record(s).state is SlotState.ACTIVE), None)

    @property
    def in_grace(self) -> Slot | None:
        return next((s for s in Slot if self.record(s).state is SlotState.GRACE), None)

    def error(self, action: str, slot: Slot, why: str) -> CodebError:
        state = self.record(slot).state.value.upper()
        return CodebError(f"{self.project}/{self.env.value}: cannot {action} {slot.value} ({state}): {why}")


def deploy_target(pair: SlotPair, *, force: bool = False, now: datetime) -> Slot:
    """The slot a new release goes to: the one opposite the active slot (blue first)."""
    active = pair.active
    if active is None:
        pending = [s for s in Slot if pair.record(s).state in (SlotState.DEPLOYED, SlotState.FAILED)]
        return pending[0] if pending else Slot.BLUE
    target = active.other
    record = pair.record(target)
    if record.state is SlotState.GRACE and not force:
        until = record.grace_until.isoformat() if record.grace_until else "?"
        raise pair.error(
            "deploy over",
            target,
            f"it holds the previous release for rollback until {until}; pass force=true to end the rollback window",
        )
    return target


def deployed(pair: SlotPair, slot: Slot, release: Release, *, now: datetime) -> SlotPair:
    record = pair.record(slot)
    if record.state is SlotState.ACTIVE:
        raise pair.error("deploy over", slot, "it serves the domain; deploy goes to the other slot")
    return pair.with_record(slot, SlotRecord(state=SlotState.DEPLOYED, release=release, deployed_at=now))


def failed(pair: SlotPair, slot: Slot, release: Release, reason: str, *, now: datetime) -> SlotPair:
    record = pair.record(slot)
    if record.state is SlotState.ACTIVE:
        raise pair.error("mark failed", slot, "it serves the domain")
    return pair.with_record(slot, SlotRecord(state=SlotState.FAILED, release=release, deployed_at=now, failure=reason))


def promoted(pair: SlotPair, *, now: datetime, grace: timedelta) -> SlotPair:
    """DEPLOYED → ACTIVE; the previously active slot → GRACE until now + grace."""
    active = pair.active
    target = active.other if active else _only_deployed(pair)
    record = pair.record(target)
    if record.state is not SlotState.DEPLOYED:
        raise pair.error("promote", target, "only a DEPLOYED slot can be promoted; deploy first")
    result = pair.with_record(target, record.model_copy(update={"state": SlotState.ACTIVE, "promoted_at": now}))
    if active is not None:
        result = result.with_record(active, _to_grace(pair.record(active), now + grace))
    return result


def rolled_back(pair: SlotPair, *, now: datetime, grace: timedelta) -> SlotPair:
    """GRACE → ACTIVE; the active slot → GRACE, so a second rollback undoes the first."""
    active = pair.active
    target = active.other if active else Slot.BLUE
    record = pair.record(target)
    if record.state is not SlotState.GRACE:
        raise pair.error("roll back to", target, "nothing is in its grace period")
    if record.grace_until is not None and record.grace_until <= now:
        raise pair.error("roll back to", target, f"its grace period ended at {record.grace_until.isoformat()}")
    result = pair.with_record(
        target, record.model_copy(update={"state": SlotState.ACTIVE, "promoted_at": now, "grace_until": None})
    )
    if active is not None:
        result = result.with_record(active, _to_grace(pair.record(active), now + grace))
    return result


def cleanable(pair: SlotPair, *, now: datetime, force: bool = False) -> list[Slot]:
    """Slots whose container may go: expired GRACE; with force any GRACE or FAILED slot."""
    slots = []
    for s in Slot:
        record = pair.record(s)
        expired = record.grace_until is not None and record.grace_until <= now
        if record.state is SlotState.GRACE and (expired or force) or record.state is SlotState.FAILED and force:
            slots.append(s)
    return slots


def cleaned(pair: SlotPair, slots: list[Slot]) -> SlotPair:
    for s in slots:
        pair = pair.with_record(s, SlotRecord())
    return pair


def _only_deployed(pair: SlotPair) -> Slot:
    deployed_slots = [s for s in Slot if pair.record(s).state is SlotState.DEPLOYED]
    return deployed_slots[0] if deployed_slots else Slot.BLUE


def _to_grace(record: SlotRecord, until: datetime) -> SlotRecord:
    return record.model_copy(update={"state": SlotState.GRACE, "grace_until": until})
