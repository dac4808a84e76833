from pyinfra.context import ctx_host

from codeb_infra.config.app import DnsSettings
from codeb_infra.domain.dns import Zone
from codeb_infra.domain.names import Environment
from codeb_infra.facts.powerdns import PowerDnsZone
from codeb_infra.flows.dns import planned_records
from tests.unit.fake_host import FakeHost, fact

NAMES = ["shop.codeb.test", "shop-preview.codeb.test"]
API = DnsSettings.from_data({"base_domain": "codeb.test"}).api


def served(live):
    """The codeb.test. zone as the flow reads it through the app server's API."""
    return {fact(PowerDnsZone, api=API, zone="codeb.test."): live}


def plan(facts, **data):
    fake = FakeHost(facts)
    fake.data = {"base_domain": "codeb.test", **data}
    with ctx_host.use(fake):
        return planned_records("shop", Environment.PRODUCTION, NAMES)


def test_no_address_no_records():
    assert plan({}) == []


def test_a_zone_not_served_here_is_left_alone():
    assert plan(served(None), private_address="10.0.0.5") == []


def test_names_in_a_served_zone_need_records_until_they_exist():
    empty = Zone(name="codeb.test.", kind="Native", serial=1, account="", rrsets=())
    [records] = plan(served(empty), private_address="10.0.0.5")
    assert records.zone == "codeb.test." and records.names == tuple(NAMES) and records.owner == "shop/production"
    assert records.current is False


def test_external_domains_are_not_ours_to_record():
    fake = FakeHost({})
    fake.data = {"base_domain": "codeb.test", "private_address": "10.0.0.5"}
    with ctx_host.use(fake):
        assert planned_records("shop", Environment.PRODUCTION, ["www.example.com"]) == []


def test_records_that_already_point_at_the_app_server_are_current():
    from codeb_infra.domain.dns import Comment, RRset

    mark = (Comment(content="owner=shop/production", account="codeb"),)
    rrsets = tuple(RRset(name=f"{n}.", rtype="A", ttl=3600, contents=("10.0.0.5",), comments=mark) for n in NAMES)
    zone = Zone(name="codeb.test.", kind="Native", serial=7, rrsets=rrsets)
    [records] = plan(served(zone), private_address="10.0.0.5")
    assert records.current is True
    [moved] = plan(served(zone), private_address="10.0.0.9")
    assert moved.current is False
