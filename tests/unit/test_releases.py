"""Releases as records: which release a slot runs, what may be redeployed, which images go."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from codeb_infra.domain import releases
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.releases import ReleaseLog, ReleaseRecord

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _release(
    number: int, slot: Slot, health: str = "passed", image_id: str | None = None, **more: object
) -> ReleaseRecord:
    return ReleaseRecord(
        number=number,
        image=f"localhost/app:v{number}",
        image_id=image_id or f"id{number}",
        tag=f"localhost/codeb-release/app:production-{number}" if health == "passed" else None,
        actor="me@here",
        time=NOW,
        slot=slot,
        health=health,
        **more,
    )  # type: ignore[arg-type]


LOG = ReleaseLog(
    releases=(
        _release(1, Slot.BLUE),
        _release(2, Slot.GREEN),
        _release(3, Slot.BLUE, "failed"),
        _release(4, Slot.BLUE),
    )
)


def test_a_slot_runs_its_newest_healthy_release():
    assert LOG.of_slot(Slot.BLUE).number == 4
    assert LOG.of_slot(Slot.GREEN).number == 2
    assert ReleaseLog().of_slot(Slot.BLUE) is None


def test_only_healthy_kept_releases_can_be_redeployed():
    assert releases.redeployable(LOG, 1).number == 1
    with pytest.raises(CodebError, match="failed its health check"):
        releases.redeployable(LOG, 3)
    pruned = LOG.model_copy(update={"releases": (LOG.releases[0].model_copy(update={"pruned": True}),)})
    with pytest.raises(CodebError, match="no longer kept"):
        releases.redeployable(pruned, 1)
    with pytest.raises(CodebError, match="no release 9"):
        releases.redeployable(LOG, 9)


@pytest.mark.parametrize("keep, pruned", [(5, []), (3, []), (2, [1]), (1, [1, 2]), (0, [1, 2, 4])])
def test_images_beyond_the_kept_healthy_releases_are_pruned(keep, pruned):
    assert [r.number for r in releases.to_prune(LOG, keep)] == pruned


def test_a_tag_already_pruned_is_not_pruned_again():
    log = LOG.model_copy(update={"releases": (LOG.releases[0].model_copy(update={"pruned": True}), *LOG.releases[1:])})
    assert [r.number for r in releases.to_prune(log, 1)] == [2]


@pytest.mark.parametrize("bad", ["0", "-2", "x", "1.5"])
def test_keep_releases_and_release_numbers_are_validated(bad):
    assert releases.keep_releases(None) == 5 and releases.keep_releases("3") == 3
    with pytest.raises(CodebError, match="keep_releases"):
        releases.keep_releases(bad)
    with pytest.raises(CodebError, match="invalid release"):
        releases.release_number(bad)


def test_the_record_handed_to_the_server_carries_no_env_value_only_its_version():
    meta = json.loads(
        releases.record_meta(
            project="shop",
            env=Environment.PRODUCTION,
            image="localhost/app:v1",
            slot=Slot.BLUE,
            env_version=3,
            actor="me@here",
            time=NOW,
            health="passed",
            container_port=3000,
            health_path="/health",
            contract="DROP x",
        )
    )
    assert meta["env_version"] == 3 and meta["slot"] == "blue" and meta["contract_state"] == "pending"
    assert releases.release_tag("shop", Environment.STAGING, 7) == "localhost/codeb-release/shop:staging-7"


def _with_contract(number: int, slot: Slot) -> ReleaseRecord:
    return _release(number, slot, contract="ALTER TABLE t DROP COLUMN old", contract_state="pending")


def test_a_contract_step_runs_only_once_the_previous_release_left_its_grace_period():
    log = ReleaseLog(releases=(_release(1, Slot.BLUE), _with_contract(2, Slot.GREEN)))
    due, cancelled = releases.contract_decisions(log, active=Slot.GREEN, deployed=None, grace_over=False)
    assert (due, cancelled) == ([], [])
    due, cancelled = releases.contract_decisions(log, active=Slot.GREEN, deployed=None, grace_over=True)
    assert [r.number for r in due] == [2] and cancelled == []


def test_a_rollback_within_grace_cancels_the_contract_step_and_a_preview_keeps_it():
    log = ReleaseLog(releases=(_release(1, Slot.BLUE), _with_contract(2, Slot.GREEN)))
    due, cancelled = releases.contract_decisions(log, active=Slot.BLUE, deployed=None, grace_over=True)
    assert due == [] and [r.number for r in cancelled] == [2]
    due, cancelled = releases.contract_decisions(log, active=Slot.BLUE, deployed=Slot.GREEN, grace_over=True)
    assert (due, cancelled) == ([], [])
    done = ReleaseLog(
        releases=(_release(1, Slot.BLUE), _with_contract(2, Slot.GREEN).model_copy(update={"contract_state": "done"}))
    )
    assert releases.contract_decisions(done, active=Slot.GREEN, deployed=None, grace_over=True) == ([], [])


def test_a_cleanup_plans_its_contract_work_even_when_no_slot_goes():
    """A first release's contract step (no release before it to roll back to) is due at once."""
    log = ReleaseLog(releases=(_with_contract(1, Slot.BLUE),))
    due, cancelled = releases.contract_decisions(log, active=Slot.BLUE, deployed=None, grace_over=True)
    lines = [c.line() for c in releases.contract_changes("app", due, cancelled)]
    assert lines == [
        "[app] contract release 1: pending -> done (runs 'ALTER TABLE t DROP COLUMN old' once: no release is left"
        " to roll back to)"
    ]
    rolled_back = ReleaseLog(releases=(_release(1, Slot.BLUE), _with_contract(2, Slot.GREEN)))
    due, cancelled = releases.contract_decisions(rolled_back, active=Slot.BLUE, deployed=None, grace_over=False)
    assert [c.line() for c in releases.contract_changes("app", due, cancelled)] == [
        "[app] contract release 2: pending -> cancelled (rolled back within its grace period)"
    ]


@pytest.mark.parametrize("bad", ["a\nb", "-x", "x" * 5000, "a\0"])
def test_release_steps_are_one_line(bad):
    assert releases.release_step("psql -c 'ALTER TABLE t ADD c int'", "migrate") == "psql -c 'ALTER TABLE t ADD c int'"
    assert releases.release_step("", "migrate") is None
    with pytest.raises(CodebError, match="invalid migrate command"):
        releases.release_step(bad, "migrate")
