"""The steps of a deploy behind routing that stands (`flows.deploy_steps`): which deploys take
that path, the command lines in their order, and which failures record the slot failed."""

from pyinfra.context import ctx_host

from codeb_infra.config.app import HostSettings
from codeb_infra.domain import decisions, plans, slots
from codeb_infra.domain.env import EnvIndex
from codeb_infra.domain.registry import Projects
from codeb_infra.domain.releases import ReleaseLog
from codeb_infra.domain.requests import DeployRequest
from codeb_infra.facts.env import EnvStoreIndex
from codeb_infra.flows import deploy_steps
from tests.unit.fake_host import FakeHost, fact
from tests.unit.test_decisions import ENV, GRACE, NOW, container, deploy_live, deployed

SITE = "shop.codeb.kr {}"


def second_release(site: str = SITE):
    """shop v1 live in blue; the decision to deploy v2 into green, and what was read."""
    first = deployed()
    projects = Projects().with_entry("shop", ENV, first.entry)
    live_pair = slots.promoted(first.deployed, now=NOW, grace=GRACE)
    plan = deployed("localhost/shop:v2", pair=live_pair, projects=projects)
    live = deploy_live(
        live_pair, first.entry, site=SITE, projects=projects, containers=[container(live_pair, live_pair.active)]
    )
    decision = decisions.plan_deploy(live, plan, site=site, records=[], image="localhost/shop:v2", image_id=None)
    return live, decision


def steps_of(live, decision, runner="quadlet"):
    settings = HostSettings.from_data({})
    request = DeployRequest.from_data({"project": "shop", "image": "localhost/shop:v2"})
    index = settings.codeb_dir + "/env-backup/shop/production/index.json"
    fake = FakeHost({fact(EnvStoreIndex, path=index): EnvIndex()})
    with ctx_host.use(fake):
        return deploy_steps.plan(settings, request, live, decision, env_files=(), runner=runner, log=ReleaseLog())


def test_a_new_release_behind_standing_routing_fits_and_a_site_change_does_not():
    assert deploy_steps.fits(second_release()[1])
    assert not deploy_steps.fits(second_release(site="shop.codeb.kr { other }")[1]), "a Caddy site change"


def test_the_steps_start_check_and_record_the_slot_and_only_its_start_or_check_records_it_failed():
    live, decision = second_release()
    plan = steps_of(live, decision)
    words = [step.get_raw_value().split()[:3] for step in plan.steps]
    kinds = [" ".join(w[:2]) if w[0] != "python3" else f"{w[1].rsplit('/', 1)[-1]} {w[2]}" for w in words]
    assert kinds == [
        "podman network",
        "codeb-state write",  # the slot's Quadlet unit
        "systemctl daemon-reload",
        "systemctl reset-failed",
        "systemctl restart",
        "codeb-state health",
        "codeb-state put-slots",
        "codeb-state write",  # the release's record, staged root-only
        "codeb-releases --root",
    ], kinds
    started, checked = 1, 5
    for when, _ in plan.on_failure:
        assert (when.start, when.stop - 1) == (started, checked)
    failed = [step.get_raw_value().split()[2] for _, step in plan.on_failure]
    assert failed == ["put-slots", "write", "--root"], "the slot and the release recorded failed"
    assert plan.expect == (("slots.json", "slots", live.expect),)
    assert "shop/production green failed" in plan.failure
    # The pointers already point at the slots' ports: no write. Missing ones are written once the
    # slot is recorded, the domain's first, before the release's record.
    wanted = plans.pointer_targets(decision.deploy.deployed, decision.deploy.entry)
    lost = [s.get_raw_value() for s in steps_of(live.model_copy(update={"pointers": {}}), decision).steps]
    assert "put-slots" in lost[6] and "write" in lost[9]
    assert [
        (f"{wanted[role]} > " in lost[i], f".{role}.tmp" in lost[i]) for i, role in ((7, "active"), (8, "preview"))
    ] == [(True, True)] * 2


def test_a_plain_podman_slot_is_removed_and_run_again():
    live, decision = second_release()
    plan = steps_of(live, decision, runner="podman")
    assert [step.get_raw_value().split()[:2] for step in plan.steps[1:3]] == [["podman", "rm"], ["podman", "run"]]
