"""PowerDNS operations and facts: given these facts, these exact commands (or a no-op)."""

import base64
import json

import pytest

from codeb_infra.commands.powerdns import PowerDnsApi
from codeb_infra.domain import dns
from codeb_infra.domain.dns import RRset, Zone
from codeb_infra.domain.errors import CodebError
from codeb_infra.facts.powerdns import PowerDnsApiKey, PowerDnsZone, PowerDnsZones
from codeb_infra.operations import powerdns
from tests.unit.fake_host import commands, fact

API = PowerDnsApi(
    tool="/opt/codeb/bin/codeb-pdns", url="http://127.0.0.1:8081", key_file="/etc/codeb/secrets/pdns-api.key"
)
TOOL = "python3 /opt/codeb/bin/codeb-pdns --url http://127.0.0.1:8081 --key-file /etc/codeb/secrets/pdns-api.key"
SOA = "ns1.codeb.kr. hostmaster.codeb.kr. 2026010105 10800 3600 604800 3600"


def zone(*rrsets):
    return Zone(
        name="codeb.kr.",
        kind="Native",
        serial=2026010105,
        rrsets=(
            RRset(name="codeb.kr.", rtype="SOA", ttl=3600, contents=(SOA,)),
            RRset(name="codeb.kr.", rtype="NS", ttl=3600, contents=("ns1.codeb.kr.",)),
            *rrsets,
        ),
    )


def served(live):
    """The zone fact as the operations read it: codeb.kr. through the API."""
    return {fact(PowerDnsZone, api=API, zone="codeb.kr."): live}


def key_state(state, conf):
    return {fact(PowerDnsApiKey, api=API, conf=conf): state}


def payload(cmd: str) -> dict:
    return json.loads(base64.b64decode(cmd.rsplit(" ", 1)[1]))


def record(facts, **kwargs):
    args = dict(
        zone="codeb.kr",
        record_name="myapp.codeb.kr",
        rtype="A",
        contents=["158.247.203.55"],
        owner="myapp/production",
        api=API,
    )
    return commands(powerdns.record, facts, **{**args, **kwargs})


def test_zone_is_created_native_with_soa_ns_and_default_ttl():
    cmds, _ = commands(
        powerdns.zone, served(None), zone="codeb.kr", nameservers=["ns1.codeb.kr"], default_ttl=600, api=API
    )
    assert len(cmds) == 1 and cmds[0].startswith(f"{TOOL} create-zone --payload ")
    assert payload(cmds[0]) == {
        "name": "codeb.kr.",
        "kind": "Native",
        "account": "codeb",
        "soa_edit_api": "DEFAULT",
        "nameservers": [],
        "rrsets": [
            {
                "name": "codeb.kr.",
                "type": "SOA",
                "ttl": 600,
                "changetype": "REPLACE",
                "records": [
                    {"content": "ns1.codeb.kr. hostmaster.codeb.kr. 0 10800 3600 604800 3600", "disabled": False}
                ],
            },
            {
                "name": "codeb.kr.",
                "type": "NS",
                "ttl": 600,
                "changetype": "REPLACE",
                "records": [{"content": "ns1.codeb.kr.", "disabled": False}],
            },
        ],
    }


def test_zone_up_to_date_is_a_noop_and_a_new_nameserver_replaces_ns_only():
    cmds, noops = commands(powerdns.zone, served(zone()), zone="codeb.kr.", nameservers=["ns1.codeb.kr"], api=API)
    assert cmds == [] and noops == ["zone codeb.kr. is up to date"]
    cmds, _ = commands(
        powerdns.zone, served(zone()), zone="codeb.kr", nameservers=["ns1.codeb.kr", "ns1.example.net"], api=API
    )
    assert cmds[0].startswith(f"{TOOL} patch --zone codeb.kr. --payload ")
    assert payload(cmds[0]) == {
        "rrsets": [
            {
                "name": "codeb.kr.",
                "type": "NS",
                "ttl": 3600,
                "changetype": "REPLACE",
                "records": [
                    {"content": "ns1.codeb.kr.", "disabled": False},
                    {"content": "ns1.example.net.", "disabled": False},
                ],
            }
        ]
    }


def test_record_replaces_one_rrset_with_its_owner_comment():
    cmds, _ = record(served(zone()), ttl=300)
    assert cmds[0].startswith(f"{TOOL} patch --zone codeb.kr. --payload ")
    assert payload(cmds[0]) == {
        "rrsets": [
            {
                "name": "myapp.codeb.kr.",
                "type": "A",
                "ttl": 300,
                "changetype": "REPLACE",
                "records": [{"content": "158.247.203.55", "disabled": False}],
                "comments": [{"content": "owner=myapp/production", "account": "codeb"}],
            }
        ]
    }


def test_record_already_there_is_a_noop_and_delete_only_when_present():
    mine = RRset(
        name="myapp.codeb.kr.",
        rtype="A",
        ttl=3600,
        contents=("158.247.203.55",),
        comments=(dns.owner_comment("myapp/production"),),
    )
    cmds, noops = record(served(zone(mine)))
    assert cmds == [] and noops == ["myapp.codeb.kr. A holds 158.247.203.55"]
    cmds, _ = record(served(zone(mine)), present=False, contents=())
    assert payload(cmds[0]) == {"rrsets": [{"name": "myapp.codeb.kr.", "type": "A", "changetype": "DELETE"}]}
    cmds, noops = record(served(zone()), present=False)
    assert cmds == [] and noops == ["myapp.codeb.kr. A does not exist"]


def test_txt_and_mx_values_are_sent_quoted_and_absolute():
    cmds, _ = record(served(zone()), record_name="codeb.kr", rtype="TXT", contents='v=spf1 "x" -all')
    assert payload(cmds[0])["rrsets"][0]["records"] == [{"content": '"v=spf1 \\"x\\" -all"', "disabled": False}]
    cmds, _ = record(
        served(zone()), record_name="codeb.kr", rtype="MX", contents=["20 mx2.codeb.kr", "10 MX1.codeb.kr"]
    )
    assert [r["content"] for r in payload(cmds[0])["rrsets"][0]["records"]] == ["10 mx1.codeb.kr.", "20 mx2.codeb.kr."]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(record_name="myapp.example.org"), "outside any zone"),
        (dict(record_name="bad name.codeb.kr"), "invalid record name"),
        (dict(ttl=10), "invalid TTL"),
        (
            dict(rtype="CNAME", record_name="www.codeb.kr", contents="myapp.codeb.kr"),
            "CNAME cannot sit beside other data",
        ),
        (dict(contents="not-an-ip"), "invalid A value"),
        (dict(record_name="hand.codeb.kr"), "not created by codeb"),
    ],
)
def test_invalid_input_raises_before_any_command(kwargs, message):
    hand = RRset(name="hand.codeb.kr.", rtype="A", ttl=300, contents=("192.0.2.1",))
    www = RRset(name="www.codeb.kr.", rtype="A", ttl=300, contents=("192.0.2.1",))
    with pytest.raises(CodebError, match=message):
        record(served(zone(hand, www)), **kwargs)


def test_owner_records_removed_deletes_only_that_owners_rrsets_in_one_change():
    mine = [
        RRset(name=n, rtype="A", ttl=300, contents=("192.0.2.1",), comments=(dns.owner_comment("myapp/production"),))
        for n in ("myapp.codeb.kr.", "myapp-preview.codeb.kr.")
    ]
    other = RRset(
        name="shop.codeb.kr.",
        rtype="A",
        ttl=300,
        contents=("192.0.2.1",),
        comments=(dns.owner_comment("shop/production"),),
    )
    cmds, _ = commands(
        powerdns.owner_records_removed, served(zone(*mine, other)), zone="codeb.kr", owner="myapp/production", api=API
    )
    assert payload(cmds[0]) == {
        "rrsets": [
            {"name": "myapp.codeb.kr.", "type": "A", "changetype": "DELETE"},
            {"name": "myapp-preview.codeb.kr.", "type": "A", "changetype": "DELETE"},
        ]
    }
    assert (
        commands(
            powerdns.owner_records_removed, served(zone(other)), zone="codeb.kr", owner="myapp/production", api=API
        )[0]
        == []
    )


def test_api_key_and_schema_only_when_needed():
    conf = "/etc/powerdns/pdns.d/codeb-api.conf"
    assert commands(powerdns.api_key, key_state("ok", conf), conf=conf, api=API)[0] == []
    assert commands(powerdns.api_key, key_state("mismatch", conf), conf=conf, api=API)[0] == [
        f"{TOOL} api-key --conf {conf} --group pdns"
    ]
    from pyinfra.facts.files import File

    db = "/var/lib/powerdns/pdns.sqlite3"
    assert commands(powerdns.sqlite_schema, {fact(File, path=db): {"mode": 640}}, database=db)[0] == []
    assert commands(powerdns.sqlite_schema, {fact(File, path=db): None}, database=db, tool="/opt/codeb/bin/codeb-pdns")[
        0
    ] == [
        (
            f"python3 /opt/codeb/bin/codeb-pdns sqlite-schema --database {db} "
            "--schema /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql --owner pdns"
        )
    ]


def test_commands_carry_the_key_file_path_never_a_key_or_header():
    cmds = [
        *commands(powerdns.zone, served(None), zone="codeb.kr", nameservers=["ns1.codeb.kr"], api=API)[0],
        *record(served(zone()))[0],
        *commands(powerdns.api_key, key_state("missing", "/c"), conf="/c", api=API)[0],
        str(PowerDnsZone().command(API, "codeb.kr.")),
        str(PowerDnsZones().command(API)),
    ]
    for cmd in cmds:
        assert cmd.startswith(TOOL + " "), "the tool reads the key from its file on the server"
        sent = json.dumps(payload(cmd)) if "--payload" in cmd else ""
        assert not any(word in text.lower() for word in ("x-api-key", "api-key=") for text in (cmd, sent))


def test_facts_parse_the_api_and_fail_clearly():
    body = {
        "name": "codeb.kr.",
        "kind": "Native",
        "serial": 7,
        "account": "codeb",
        "rrsets": [
            {
                "name": "a.codeb.kr.",
                "type": "A",
                "ttl": 60,
                "records": [
                    {"content": "192.0.2.2", "disabled": False},
                    {"content": "192.0.2.1", "disabled": False},
                    {"content": "192.0.2.3", "disabled": True},
                ],
                "comments": [{"content": "owner=x", "account": "codeb", "modified_at": 5}],
            }
        ],
    }
    parsed = PowerDnsZone().process([json.dumps(body)])
    rrset = parsed.rrset("a.codeb.kr.", "A")
    assert rrset.contents == ("192.0.2.1", "192.0.2.2") and rrset.disabled == ("192.0.2.3",) and rrset.owner == "x"
    assert PowerDnsZone().process(["null"]) is None and PowerDnsZone.default() is None
    assert [z.name for z in PowerDnsZones().process(['[{"name": "codeb.kr.", "kind": "Native", "serial": 1}]'])] == [
        "codeb.kr."
    ]
    assert PowerDnsZones.default() == [] and PowerDnsApiKey.default() == "missing"
    assert PowerDnsZone().requires_command(API, "codeb.kr.") == API.tool, "no codeb-pdns yet: the default"
    with pytest.raises(CodebError, match="could not read the zone"):
        PowerDnsZone().process(["<html>"])
    with pytest.raises(CodebError, match="unexpected zone data"):
        PowerDnsZone().process(['{"name": "x."}'])


def test_unsafe_arguments_never_reach_a_command_line():
    with pytest.raises(ValueError, match="unsafe"):
        commands(powerdns.api_key, key_state("missing", "-rf"), conf="-rf", api=API)


def test_address_records_point_a_projects_names_in_one_change():
    args = dict(
        zone="codeb.kr",
        names=["myapp.codeb.kr", "myapp-preview.codeb.kr"],
        addresses={"A": "158.247.203.55"},
        owner="myapp/production",
        api=API,
    )
    cmds, _ = commands(powerdns.address_records, served(zone()), **args)
    assert [(r["name"], r["type"], r["changetype"]) for r in payload(cmds[0])["rrsets"]] == [
        ("myapp.codeb.kr.", "A", "REPLACE"),
        ("myapp-preview.codeb.kr.", "A", "REPLACE"),
    ]

    def owned(name, rtype, value, owner="myapp/production"):
        return RRset(name=name, rtype=rtype, ttl=3600, contents=(value,), comments=(dns.owner_comment(owner),))

    current = zone(
        owned("myapp.codeb.kr.", "A", "158.247.203.55"),
        owned("myapp-preview.codeb.kr.", "A", "158.247.203.55"),
        owned("myapp.codeb.kr.", "AAAA", "2001:db8::1"),
        RRset(name="myapp-preview.codeb.kr.", rtype="AAAA", ttl=60, contents=("2001:db8::2",)),
    )
    cmds, _ = commands(powerdns.address_records, served(current), **args)
    assert payload(cmds[0]) == {"rrsets": [{"name": "myapp.codeb.kr.", "type": "AAAA", "changetype": "DELETE"}]}, (
        "this owner's AAAA goes when no IPv6 address is given; the hand-made one stays"
    )
    cmds, noops = commands(powerdns.address_records, served(zone(*current.rrsets[2:4], *current.rrsets[5:])), **args)
    assert cmds == [] and noops == ["myapp.codeb.kr, myapp-preview.codeb.kr point at 158.247.203.55"]
    cmds, _ = commands(powerdns.address_records, served(current), **{**args, "present": False})
    assert [(r["name"], r["type"]) for r in payload(cmds[0])["rrsets"]] == [
        ("myapp.codeb.kr.", "A"),
        ("myapp.codeb.kr.", "AAAA"),
        ("myapp-preview.codeb.kr.", "A"),
    ]
    with pytest.raises(CodebError, match="no address to point the names at"):
        commands(powerdns.address_records, served(zone()), **{**args, "addresses": {}})
    with pytest.raises(CodebError, match="keyed by record type A or AAAA"):
        commands(powerdns.address_records, served(zone()), **{**args, "addresses": {"MX": "x"}})


def test_address_records_prune_this_owners_names_no_longer_listed():
    old = RRset(
        name="old.codeb.kr.",
        rtype="A",
        ttl=3600,
        contents=("158.247.203.55",),
        comments=(dns.owner_comment("myapp/production"),),
    )
    other = RRset(
        name="shop.codeb.kr.",
        rtype="A",
        ttl=3600,
        contents=("158.247.203.55",),
        comments=(dns.owner_comment("shop/production"),),
    )
    args = {
        "zone": "codeb.kr",
        "names": ["new.codeb.kr"],
        "addresses": {"A": "158.247.203.55"},
        "owner": "myapp/production",
        "api": API,
    }
    cmds, _ = commands(powerdns.address_records, served(zone(old, other)), **args, prune=True)
    assert [(r["name"], r["changetype"]) for r in payload(cmds[0])["rrsets"]] == [
        ("new.codeb.kr.", "REPLACE"),
        ("old.codeb.kr.", "DELETE"),
    ], "one change: the renamed domain moves atomically"
    cmds, _ = commands(powerdns.address_records, served(zone(old, other)), **args)
    assert [r["name"] for r in payload(cmds[0])["rrsets"]] == ["new.codeb.kr."], "without prune other names stay"
