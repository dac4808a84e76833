from datetime import UTC, datetime, timedelta

import pytest

from codeb_infra.domain import plans, slots
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.registry import Projects
from codeb_infra.domain.requests import DeployRequest
from codeb_infra.domain.slots import SlotPair

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def deploy(projects, pair, **kw):
    request = DeployRequest.from_data({"project": "shop", "image": "localhost/shop:v1", **kw})
    return plans.plan_deploy(request, projects, pair, base_domain="codeb.kr", now=NOW)


def test_first_deploy_allocates_ports_and_targets_blue():
    plan = deploy(Projects(), SlotPair(project="shop", env=Environment.PRODUCTION))
    assert plan.target is Slot.BLUE and plan.serving is None
    assert plan.entry.domain == "shop.codeb.kr" and plan.preview_domain == "shop-preview.codeb.kr"
    assert plan.entry.ports[Slot.GREEN] == plan.entry.ports[Slot.BLUE] + 1


def test_the_same_release_again_changes_only_routing():
    first = deploy(Projects(), SlotPair(project="shop", env=Environment.PRODUCTION))
    projects = Projects().with_entry("shop", Environment.PRODUCTION, first.entry)
    live = slots.promoted(first.deployed, now=NOW, grace=timedelta(hours=48))
    again = deploy(projects, live, aliases="www.shop.example")
    assert again.serving is Slot.BLUE and again.deployed == live, "no slot changes for a routing-only change"
    assert again.entry.domains == ["shop.codeb.kr", "www.shop.example"]
    kept = deploy(projects.with_entry("shop", Environment.PRODUCTION, again.entry), live)
    assert kept.entry.aliases == ("www.shop.example",), "no aliases given keeps the project's"
    assert deploy(projects, live, aliases="").entry.aliases == ()


def test_domains_cannot_be_shared():
    first = deploy(Projects(), SlotPair(project="shop", env=Environment.PRODUCTION), aliases="www.shop.example")
    projects = Projects().with_entry("shop", Environment.PRODUCTION, first.entry)
    other = DeployRequest.from_data({"project": "blog", "image": "localhost/blog:v1", "aliases": "www.shop.example"})
    with pytest.raises(CodebError, match="domain www.shop.example already belongs to shop/production"):
        plans.plan_deploy(
            other, projects, SlotPair(project="blog", env=Environment.PRODUCTION), base_domain="codeb.kr", now=NOW
        )
    with pytest.raises(CodebError, match="already belongs to the preview"):
        deploy(Projects(), SlotPair(project="shop", env=Environment.PRODUCTION), aliases="shop-preview.codeb.kr")
    with pytest.raises(CodebError, match="invalid domain"):
        deploy(Projects(), SlotPair(project="shop", env=Environment.PRODUCTION), aliases="bad domain")


def test_the_same_image_with_a_changed_env_goes_beside_the_active_slot_never_over_it():
    first = deploy(Projects(), SlotPair(project="shop", env=Environment.PRODUCTION))
    projects = Projects().with_entry("shop", Environment.PRODUCTION, first.entry)
    live = slots.promoted(first.deployed, now=NOW, grace=timedelta(hours=48))
    request = DeployRequest.from_data({"project": "shop", "image": "localhost/shop:v1"})
    changed = plans.plan_deploy(request, projects, live, base_domain="codeb.kr", now=NOW, env_changed=True)
    assert changed.serving is None and changed.target is Slot.GREEN
    preview = deploy(projects, first.deployed)
    redeployed = plans.plan_deploy(request, projects, first.deployed, base_domain="codeb.kr", now=NOW, env_changed=True)
    assert preview.target is redeployed.target is Slot.BLUE, "a slot only in preview is replaced in place"
