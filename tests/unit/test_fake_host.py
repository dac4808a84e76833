"""The fake host answers only the facts a test gave, for exactly the arguments it gave them."""

import pytest

from codeb_infra.facts.files import TextFile
from codeb_infra.facts.podman import PodmanNetworks
from codeb_infra.operations import podman
from tests.unit.fake_host import FakeHost, UnexpectedFact, commands, fact


def test_facts_are_keyed_by_their_arguments():
    fake = FakeHost({fact(TextFile, path="/a"): "a", PodmanNetworks: set()})
    assert fake.get_fact(TextFile, path="/a") == "a"
    assert fake.get_fact(PodmanNetworks) == set()
    with pytest.raises(UnexpectedFact, match=r"TextFile\(path='/b'\) was read but not given"):
        fake.get_fact(TextFile, path="/b")


def test_a_fact_the_test_did_not_give_fails_the_operation():
    with pytest.raises(UnexpectedFact, match=r"PodmanNetworks\(\)"):
        commands(podman.network, {}, network="codeb-main")
