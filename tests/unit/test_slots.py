from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeb_infra.domain import slots
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.slots import Release, SlotPair, SlotRecord, SlotState

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GRACE = timedelta(hours=48)


def rel(tag: str, port: int = 4000) -> Release:
    return Release(image=f"localhost/app:{tag}", port=port, container_port=3000, health_path="/health")


def empty() -> SlotPair:
    return SlotPair(project="myapp", env=Environment.PRODUCTION)


def states(pair: SlotPair) -> tuple[SlotState, SlotState]:
    return pair.blue.state, pair.green.state


def test_first_deploy_goes_to_blue():
    assert slots.deploy_target(empty(), now=NOW) is Slot.BLUE


def test_deploy_promote_deploy_promote_rollback_cleanup():
    pair = slots.deployed(empty(), Slot.BLUE, rel("v1"), now=NOW)
    assert states(pair) == (SlotState.DEPLOYED, SlotState.EMPTY)
    pair = slots.promoted(pair, now=NOW, grace=GRACE)
    assert states(pair) == (SlotState.ACTIVE, SlotState.EMPTY)
    assert slots.deploy_target(pair, now=NOW) is Slot.GREEN
    pair = slots.deployed(pair, Slot.GREEN, rel("v2", 4001), now=NOW)
    pair = slots.promoted(pair, now=NOW, grace=GRACE)
    assert states(pair) == (SlotState.GRACE, SlotState.ACTIVE)
    assert pair.blue.grace_until == NOW + GRACE
    pair = slots.rolled_back(pair, now=NOW, grace=GRACE)
    assert states(pair) == (SlotState.ACTIVE, SlotState.GRACE)
    assert pair.blue.release == rel("v1")
    # a second rollback toggles back
    again = slots.rolled_back(pair, now=NOW, grace=GRACE)
    assert states(again) == (SlotState.GRACE, SlotState.ACTIVE)
    later = NOW + GRACE + timedelta(seconds=1)
    assert slots.cleanable(pair, now=NOW) == []
    assert slots.cleanable(pair, now=later) == [Slot.GREEN]
    assert slots.cleanable(pair, now=NOW, force=True) == [Slot.GREEN]
    cleaned = slots.cleaned(pair, [Slot.GREEN])
    assert states(cleaned) == (SlotState.ACTIVE, SlotState.EMPTY)
    assert cleaned.green == SlotRecord()


def test_rollback_after_grace_is_refused():
    pair = slots.promoted(slots.deployed(empty(), Slot.BLUE, rel("v1"), now=NOW), now=NOW, grace=GRACE)
    pair = slots.promoted(slots.deployed(pair, Slot.GREEN, rel("v2"), now=NOW), now=NOW, grace=GRACE)
    with pytest.raises(
        CodebError, match=r"myapp/production: cannot roll back to blue \(GRACE\): its grace period ended"
    ):
        slots.rolled_back(pair, now=NOW + GRACE, grace=GRACE)


def test_deploy_over_grace_needs_force():
    pair = slots.promoted(slots.deployed(empty(), Slot.BLUE, rel("v1"), now=NOW), now=NOW, grace=GRACE)
    pair = slots.promoted(slots.deployed(pair, Slot.GREEN, rel("v2"), now=NOW), now=NOW, grace=GRACE)
    with pytest.raises(CodebError, match=r"cannot deploy over blue \(GRACE\).*force=true"):
        slots.deploy_target(pair, now=NOW)
    assert slots.deploy_target(pair, now=NOW, force=True) is Slot.BLUE


@pytest.mark.parametrize(
    "blue, green, action, message",
    [
        (SlotState.EMPTY, SlotState.EMPTY, "promote", r"cannot promote blue \(EMPTY\)"),
        (SlotState.ACTIVE, SlotState.EMPTY, "promote", r"cannot promote green \(EMPTY\)"),
        (SlotState.ACTIVE, SlotState.FAILED, "promote", r"cannot promote green \(FAILED\)"),
        (SlotState.EMPTY, SlotState.EMPTY, "rollback", r"cannot roll back to blue \(EMPTY\)"),
        (SlotState.ACTIVE, SlotState.EMPTY, "rollback", r"cannot roll back to green \(EMPTY\)"),
        (SlotState.ACTIVE, SlotState.DEPLOYED, "rollback", r"cannot roll back to green \(DEPLOYED\)"),
    ],
)
def test_illegal_transitions_name_project_env_slot_and_state(blue, green, action, message):
    pair = SlotPair(
        project="myapp",
        env=Environment.PRODUCTION,
        blue=SlotRecord(state=blue, release=rel("v1") if blue is not SlotState.EMPTY else None),
        green=SlotRecord(state=green, release=rel("v2") if green is not SlotState.EMPTY else None),
    )
    with pytest.raises(CodebError, match="myapp/production: " + message):
        if action == "promote":
            slots.promoted(pair, now=NOW, grace=GRACE)
        else:
            slots.rolled_back(pair, now=NOW, grace=GRACE)


def test_active_slot_cannot_be_deployed_over():
    pair = slots.promoted(slots.deployed(empty(), Slot.BLUE, rel("v1"), now=NOW), now=NOW, grace=GRACE)
    with pytest.raises(CodebError, match=r"cannot deploy over blue \(ACTIVE\)"):
        slots.deployed(pair, Slot.BLUE, rel("v2"), now=NOW)


def test_failed_deploy_can_be_redeployed_and_is_cleaned_only_with_force():
    pair = slots.failed(empty(), Slot.BLUE, rel("v3"), "health check failed", now=NOW)
    assert pair.blue.state is SlotState.FAILED
    assert slots.deploy_target(pair, now=NOW) is Slot.BLUE
    assert slots.cleanable(pair, now=NOW) == []
    assert slots.cleanable(pair, now=NOW, force=True) == [Slot.BLUE]


ACTIONS = st.lists(st.sampled_from(["deploy", "promote", "rollback", "cleanup", "fail"]), max_size=30)


@given(ACTIONS, st.integers(0, 100))
def test_any_sequence_keeps_at_most_one_active_slot(actions, hours):
    pair, now = empty(), NOW
    for i, action in enumerate(actions):
        now = now + timedelta(hours=hours)
        try:
            if action == "deploy":
                target = slots.deploy_target(pair, now=now, force=i % 2 == 0)
                pair = slots.deployed(pair, target, rel(f"v{i}"), now=now)
            elif action == "fail":
                target = slots.deploy_target(pair, now=now, force=True)
                pair = slots.failed(pair, target, rel(f"v{i}"), "x", now=now)
            elif action == "promote":
                pair = slots.promoted(pair, now=now, grace=GRACE)
            elif action == "rollback":
                pair = slots.rolled_back(pair, now=now, grace=GRACE)
            else:
                pair = slots.cleaned(pair, slots.cleanable(pair, now=now))
        except CodebError as error:
            assert "myapp/production" in str(error)
        actives = [s for s in Slot if pair.record(s).state is SlotState.ACTIVE]
        assert len(actives) <= 1
        for s in Slot:
            record = pair.record(s)
            assert (record.release is None) == (record.state is SlotState.EMPTY)
            assert (record.state is SlotState.GRACE) == (record.grace_until is not None)
