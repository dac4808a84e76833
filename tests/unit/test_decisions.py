"""The flows' pure planners: given a live state, the plan (changes, host, old -> new) and what
the apply step gets. No host, no I/O."""

from datetime import UTC, datetime, timedelta

import pytest

from codeb_infra.domain import decisions, plans, slots
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.live import LiveContainer, LiveDeploy, LiveSlots
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.registry import Projects
from codeb_infra.domain.requests import DeployRequest
from codeb_infra.domain.slots import SlotPair

NOW = datetime(2026, 11, 22, tzinfo=UTC)
GRACE = timedelta(hours=48)
ENV = Environment.PRODUCTION
PATHS = {
    "active": "/etc/caddy/upstreams/shop-production.active",
    "preview": "/etc/caddy/upstreams/shop-production.preview",
}


def deployed(image="localhost/shop:v1", pair=None, projects=Projects()):  # noqa: B008 - frozen, never mutated
    request = DeployRequest.from_data({"project": "shop", "image": image})
    plan = plans.plan_deploy(
        request, projects, pair or SlotPair(project="shop", env=ENV), base_domain="codeb.kr", now=NOW
    )
    return plan


def container(pair, slot, running=True, network="codeb-main"):
    release = pair.record(slot).release
    return LiveContainer(
        name=f"shop-production-{slot.value}",
        image=release.image,
        running=running,
        spec=plans.container_spec(release, network),
    )


def live_of(pair, entry, *, pointers=None, containers=None, existed=True):
    if containers is None:
        containers = [container(pair, s) for s in Slot if pair.record(s).release is not None]
    return LiveSlots(
        host="app",
        project="shop",
        env=ENV,
        entry=entry,
        pair=pair,
        existed=existed,
        containers={c.name: c for c in containers},
        pointers=pointers or {},
        pointer_paths=PATHS,
    )


def one_release():
    """v1 deployed into blue, not yet promoted; preview points at blue."""
    plan = deployed()
    return plan.deployed, plan.entry


def test_promote_plans_the_pointer_move_and_both_records():
    pair, entry = one_release()
    blue = entry.ports[Slot.BLUE]
    live = live_of(pair, entry, pointers={"active": None, "preview": f"127.0.0.1:{blue}"})
    decision = decisions.plan_promote(live, now=NOW, grace=GRACE)
    assert decision.wanted.active is Slot.BLUE
    pointer = [c for c in decision.plan.changes if c.what == "pointer"]
    assert [(c.host, c.target, c.old, c.new) for c in pointer] == [
        ("app", PATHS["active"], None, f"127.0.0.1:{blue}"),
        ("app", PATHS["preview"], f"127.0.0.1:{blue}", f"127.0.0.1:{blue + 1}"),
    ]
    record = [c for c in decision.plan.changes if c.what == "slot record"]
    assert [(c.target, c.old, c.new) for c in record] == [
        ("shop/production blue", "deployed localhost/shop:v1", "active localhost/shop:v1")
    ]
    assert decision.pointers == ((PATHS["active"], f"127.0.0.1:{blue}"), (PATHS["preview"], f"127.0.0.1:{blue + 1}"))
    assert decision.expect == plans.pair_digest(pair, existed=True)
    assert "[app] pointer /etc/caddy/upstreams/shop-production.active: - -> 127.0.0.1:" in "\n".join(
        decision.plan.lines()
    )


def test_a_promoted_pair_with_its_pointers_in_place_plans_nothing():
    pair, entry = one_release()
    live_pair = slots.promoted(pair, now=NOW, grace=GRACE)
    targets = plans.pointer_targets(live_pair, entry)
    decision = decisions.plan_promote(live_of(live_pair, entry, pointers=targets), now=NOW, grace=GRACE)
    assert not decision.plan.changed and decision.plan.note == "blue already active"
    lost = decisions.plan_promote(live_of(live_pair, entry, pointers={**targets, "active": None}), now=NOW, grace=GRACE)
    assert [(c.what, c.target) for c in lost.plan.changes] == [("pointer", PATHS["active"])], (
        "a lost pointer is repaired"
    )


def test_rollback_moves_back_without_touching_containers():
    first, entry = one_release()
    live_pair = slots.promoted(first, now=NOW, grace=GRACE)
    second = deployed("localhost/shop:v2", live_pair, Projects().with_entry("shop", ENV, entry))
    promoted = slots.promoted(second.deployed, now=NOW, grace=GRACE)
    live = live_of(promoted, entry, pointers=plans.pointer_targets(promoted, entry))
    decision = decisions.plan_rollback(live, to=None, now=NOW, grace=GRACE)
    assert decision.wanted.active is Slot.BLUE
    assert {c.what for c in decision.plan.changes} == {"pointer", "slot record"}
    active = next(c for c in decision.plan.changes if c.target == PATHS["active"])
    assert (active.old, active.new) == (f"127.0.0.1:{entry.ports[Slot.GREEN]}", f"127.0.0.1:{entry.ports[Slot.BLUE]}")
    assert not decisions.plan_rollback(
        live_of(decision.wanted, entry, pointers=plans.pointer_targets(decision.wanted, entry)),
        to=Slot.BLUE,
        now=NOW,
        grace=GRACE,
    ).plan.changed


def test_switching_to_a_broken_container_or_an_unknown_project_is_refused():
    pair, entry = one_release()
    stopped = live_of(pair, entry, containers=[container(pair, Slot.BLUE, running=False)])
    with pytest.raises(CodebError, match="container is missing, stopped"):
        decisions.plan_promote(stopped, now=NOW, grace=GRACE)
    with pytest.raises(CodebError, match="container is missing"):
        decisions.plan_promote(live_of(pair, entry, containers=[]), now=NOW, grace=GRACE)
    with pytest.raises(CodebError, match="unknown project shop/production"):
        decisions.plan_promote(live_of(pair, None), now=NOW, grace=GRACE)
    with pytest.raises(CodebError, match="only a DEPLOYED slot can be promoted"):
        decisions.plan_promote(live_of(SlotPair(project="shop", env=ENV), entry, existed=False), now=NOW, grace=GRACE)


def test_cleanup_plans_expired_grace_slots_only_unless_forced():
    first, entry = one_release()
    second = deployed(
        "localhost/shop:v2", slots.promoted(first, now=NOW, grace=GRACE), Projects().with_entry("shop", ENV, entry)
    )
    pair = slots.promoted(second.deployed, now=NOW, grace=GRACE)
    live = live_of(pair, entry)
    assert not decisions.plan_cleanup(live, now=NOW, force=False).plan.changed
    later = decisions.plan_cleanup(live, now=NOW + GRACE + timedelta(seconds=1), force=False)
    assert later.remove == (Slot.BLUE,)
    container_change = later.plan.changes[0]
    assert (container_change.what, container_change.target, container_change.old, container_change.new) == (
        "container",
        "shop-production-blue",
        "localhost/shop:v1",
        None,
    )
    assert "grace ended" in container_change.why
    assert later.cleaned.record(Slot.BLUE).state is slots.SlotState.EMPTY
    assert decisions.plan_cleanup(live, now=NOW, force=True).remove == (Slot.BLUE,)


def test_remove_lists_everything_left_and_needs_force_while_live():
    pair, entry = one_release()
    live_pair = slots.promoted(pair, now=NOW, grace=GRACE)
    live = live_of(live_pair, entry, pointers=plans.pointer_targets(live_pair, entry))
    with pytest.raises(CodebError, match="pass force=true"):
        decisions.plan_remove(live, force=False, site="site", site_path="/s.caddy", dns_owners=[])
    plan = decisions.plan_remove(
        live, force=True, site="site", site_path="/s.caddy", dns_owners=[("codeb.kr", "shop/production")]
    )
    assert [c.what for c in plan.changes] == [
        "container",
        "Caddy site",
        "pointer",
        "pointer",
        "DNS records",
        "slot records",
        "registry entry",
    ]
    assert all(c.new is None and c.host == "app" for c in plan.changes)
    gone = live_of(SlotPair(project="shop", env=ENV), None, existed=False)
    assert not decisions.plan_remove(gone, force=False, site=None, site_path="/s.caddy", dns_owners=[]).changed


def deploy_live(pair, entry, *, site, env_digest="", containers=None, projects=None):
    base = live_of(
        pair,
        entry,
        pointers=plans.pointer_targets(pair, entry) if entry else {},
        containers=containers,
        existed=entry is not None,
    )
    return LiveDeploy(
        **dict(base), projects=projects or Projects(), site=site, site_path="/s.caddy", env_digest=env_digest
    )


def test_first_deploy_plans_container_record_entry_pointer_dns_and_site():
    plan = deployed()
    live = deploy_live(SlotPair(project="shop", env=ENV), None, site=None, containers=[])
    records = [
        decisions.ZoneNames(
            zone="codeb.kr", names=("shop.codeb.kr", "shop-preview.codeb.kr"), owner="shop/production", current=False
        )
    ]
    decision = decisions.plan_deploy(
        live, plan, site="shop.codeb.kr {}", records=records, image="localhost/shop:v1", image_id=None
    )
    assert not decision.routing_only
    assert [c.what for c in decision.plan.changes] == [
        "container",
        "slot record",
        "registry entry",
        "pointer",
        "DNS records",
        "Caddy site",
    ]
    run = decision.plan.changes[0]
    assert (run.target, run.old, run.new, run.why) == (
        "shop-production-blue",
        None,
        "localhost/shop:v1",
        "no container yet",
    )
    assert decision.plan.changes[3].new == f"127.0.0.1:{plan.entry.ports[Slot.BLUE]}"


def test_the_same_release_again_plans_nothing_and_a_changed_env_replaces_the_container():
    first = deployed()
    projects = Projects().with_entry("shop", ENV, first.entry)
    live_pair = slots.promoted(first.deployed, now=NOW, grace=GRACE)
    again = deployed(pair=live_pair, projects=projects)
    site = "shop.codeb.kr {}"
    live = deploy_live(live_pair, first.entry, site=site, projects=projects)
    decision = decisions.plan_deploy(live, again, site=site, records=[], image="localhost/shop:v1", image_id=None)
    assert decision.routing_only and not decision.plan.changed
    assert decision.plan.note == "localhost/shop:v1 is already active in blue"
    moved = decisions.plan_deploy(
        live.model_copy(update={"env_digest": "abc"}),
        again,
        site=site,
        records=[],
        image="localhost/shop:v1",
        image_id=None,
    )
    assert not moved.routing_only
    assert [(c.what, c.why) for c in moved.plan.changes if c.what == "container"] == [
        ("container", "env files changed")
    ]
    resite = decisions.plan_deploy(live, again, site="other {}", records=[], image="localhost/shop:v1", image_id=None)
    assert [(c.what, c.old) for c in resite.plan.changes] == [("Caddy site", "content differs")]
