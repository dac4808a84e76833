import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeb_infra.domain import dns
from codeb_infra.domain.dns import RRset, Zone
from codeb_infra.domain.errors import CodebError

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z", fullmatch=True)
TLD = st.from_regex(r"\A[a-z]([a-z0-9-]{0,10}[a-z0-9])?\Z", fullmatch=True)


def zone_with(*rrsets, name="example.com."):
    soa = RRset(
        name=name, rtype="SOA", ttl=3600, contents=(f"ns1.{name} hostmaster.{name} 2026010101 10800 3600 604800 3600",)
    )
    ns = RRset(name=name, rtype="NS", ttl=3600, contents=(f"ns1.{name}",))
    return Zone(name=name, kind="Native", serial=2026010101, rrsets=(soa, ns, *rrsets))


def spec(name="www.example.com", rtype="A", contents=("192.0.2.1",), **kwargs):
    return dns.record_spec(zone="example.com", name=name, rtype=rtype, contents=contents, **kwargs)


# ---- names ----


@given(st.lists(LABEL, min_size=1, max_size=4), TLD, st.booleans(), st.booleans())
def test_names_normalise_to_lowercase_absolute_and_stay_fixed(labels, tld, upper, dot):
    text = ".".join([*labels, tld])
    given_ = (text.upper() if upper else text) + ("." if dot else "")
    assert dns.zone_name(given_) == text + "."
    assert dns.record_name(given_) == text + "."
    assert dns.zone_name(dns.zone_name(given_)) == dns.zone_name(given_)
    assert dns.zone_for(f"x.{text}", [text]) == text + "."


@given(st.text(min_size=1, max_size=80))
def test_names_outside_the_alphabet_never_pass(text):
    try:
        name = dns.record_name(text)
    except CodebError:
        return
    assert re.fullmatch(r"(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)+", name), name


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " example.com",
        "ex ample.com",
        "exa;mple.com",
        "-x.example.com",
        "x-.example.com",
        "a..example.com",
        "a" * 64 + ".com",
        "münchen.de",
        "example.com\n",
        "*.*.example.com",
        "www.*.example.com",
        None,
        5,
        ".",
        ("a." * 127) + "com",
    ],
)
def test_bad_record_names(bad):
    with pytest.raises(CodebError, match="invalid record name"):
        dns.record_name(bad)


@pytest.mark.parametrize("bad", ["com", "_dmarc.example.com", "*.example.com", "1.2.3.4", "example..com"])
def test_zone_names_are_plain_host_names_of_two_labels_or_more(bad):
    with pytest.raises(CodebError, match="invalid zone name"):
        dns.zone_name(bad)


@pytest.mark.parametrize(
    "good", ["_dmarc.example.com", "_acme-challenge.www.example.com.", "*.example.com", "example.com"]
)
def test_service_labels_and_wildcards_are_record_names(good):
    assert dns.record_name(good).endswith("example.com.")


def test_record_outside_any_managed_zone_is_refused():
    assert dns.zone_for("a.b.example.com", ["example.com", "b.example.com"]) == "b.example.com."
    with pytest.raises(CodebError, match=r"www.other.org. is outside any zone codeb manages \(zones: example.com.\)"):
        dns.zone_for("www.other.org", ["example.com"])
    with pytest.raises(CodebError, match="names are absolute: write e.g. www.example.com."):
        dns.zone_for("www", ["example.com"])
    with pytest.raises(CodebError, match="outside any zone"):
        dns.zone_for("notexample.com", ["example.com"])
    with pytest.raises(CodebError, match="outside any zone"):
        spec(name="www.example.org")


# ---- TTLs ----


@given(st.integers(min_value=dns.TTL_MIN, max_value=dns.TTL_MAX))
def test_ttls_in_range_pass(value):
    assert dns.ttl_seconds(value) == value


@given(
    st.one_of(
        st.integers(max_value=dns.TTL_MIN - 1),
        st.integers(min_value=dns.TTL_MAX + 1),
        st.booleans(),
        st.floats(),
        st.text(max_size=5),
        st.none(),
    )
)
def test_ttls_out_of_range_or_not_whole_seconds_are_refused(value):
    with pytest.raises(CodebError, match="invalid TTL .*from 60 to 604800"):
        dns.ttl_seconds(value)


# ---- values ----


@pytest.mark.parametrize(
    "rtype,given_,canonical",
    [
        ("A", "192.0.2.1", "192.0.2.1"),
        ("AAAA", "2001:DB8:0:0::1", "2001:db8::1"),
        ("aaaa", "::ffff:192.0.2.1", "::ffff:c000:201"),
        ("CNAME", "Target.Example.NET", "target.example.net."),
        ("CNAME", "_x.example.net.", "_x.example.net."),
        ("MX", "10 mail.example.com", "10 mail.example.com."),
        ("MX", "010   Mail.example.com.", "10 mail.example.com."),
        ("TXT", "v=spf1 -all", '"v=spf1 -all"'),
        ("TXT", 'say "hi" \\o/', '"say \\"hi\\" \\\\o/"'),
        ("TXT", "", '""'),
    ],
)
def test_values_become_what_powerdns_answers_with(rtype, given_, canonical):
    assert dns.record_content(dns.record_type(rtype), given_) == canonical


@pytest.mark.parametrize(
    "rtype,bad,message",
    [
        ("A", "192.0.2", "expected an IPv4 address"),
        ("A", "192.000.2.1", "IPv4"),
        ("A", "2001:db8::1", "IPv4"),
        ("AAAA", "192.0.2.1", "expected an IPv6 address"),
        ("CNAME", "bad name", "invalid CNAME target"),
        ("MX", "mail.example.com", "PRIORITY HOST"),
        ("MX", "70000 mail.example.com", "PRIORITY HOST"),
        ("MX", "10 -mail.example.com", "invalid MX host"),
        ("TXT", "line\nbreak", "printable ASCII"),
        ("TXT", "caf\u00e9", "printable ASCII"),
        ("TXT", "x" * 4001, "at most 4000"),
        ("A", 5, "expected text"),
    ],
)
def test_bad_values_are_refused(rtype, bad, message):
    with pytest.raises(CodebError, match=message):
        dns.record_content(dns.record_type(rtype), bad)


def test_unsupported_types():
    with pytest.raises(CodebError, match="unsupported record type 'SRV': use one of A, AAAA, CNAME, TXT, MX"):
        dns.record_type("SRV")


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=900))
def test_txt_quoting_round_trips_in_255_byte_strings(text):
    content = dns.txt_content(text)
    assert dns.txt_text(content) == text
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', content)
    assert len(strings) == max(1, -(-len(text) // 255))
    assert all(len(re.sub(r"\\(.)", r"\1", s)) <= 255 for s in strings)


# ---- RRsets in a zone ----


def test_cname_beside_other_data_is_refused_either_way():
    zone = zone_with(
        RRset(name="www.example.com.", rtype="A", ttl=300, contents=("192.0.2.1",)),
        RRset(name="c.example.com.", rtype="CNAME", ttl=300, contents=("www.example.com.",)),
    )
    with pytest.raises(
        CodebError, match="www.example.com. CNAME: the name already holds A data and a CNAME cannot sit beside"
    ):
        dns.plan_record(spec(rtype="CNAME", contents="x.example.net"), zone)
    with pytest.raises(CodebError, match="c.example.com. TXT: the name is a CNAME"):
        dns.plan_record(spec(name="c.example.com", rtype="TXT", contents="hi"), zone)
    with pytest.raises(CodebError, match="zone apex"):
        spec(name="example.com", rtype="CNAME", contents="x.example.net")
    with pytest.raises(CodebError, match="at most one CNAME target"):
        spec(name="d.example.com", rtype="CNAME", contents=["a.example.net", "b.example.net"])


def test_new_rrset_is_written_with_the_owner_comment_and_zone_default_ttl():
    change = dns.plan_record(
        spec(contents=["192.0.2.2", "192.0.2.1", "192.0.2.1"], owner="myapp/production"), zone_with()
    )
    assert change.rrset.contents == ("192.0.2.1", "192.0.2.2") and change.rrset.ttl == 3600
    assert change.rrset.owner == "myapp/production" and not change.delete


def test_same_rrset_is_no_change_and_other_values_replace():
    mine = RRset(
        name="www.example.com.", rtype="A", ttl=300, contents=("192.0.2.1",), comments=(dns.owner_comment("codeb"),)
    )
    zone = zone_with(mine)
    assert dns.plan_record(spec(ttl=300), zone) is None
    assert dns.plan_record(spec(ttl=600), zone).rrset.ttl == 600
    assert dns.plan_record(spec(ttl=300, contents="192.0.2.9"), zone).rrset.contents == ("192.0.2.9",)
    assert dns.plan_record(spec(present=False), zone, present=False).delete
    assert dns.plan_record(spec(name="gone.example.com", present=False), zone, present=False) is None


def test_rrsets_made_by_hand_or_by_another_owner_are_left_alone_unless_taken_over():
    note = dns.Comment(content="added for the mail vendor", account="alice", modified_at=1)
    hand = RRset(name="www.example.com.", rtype="A", ttl=300, contents=("192.0.2.7",), comments=(note,))
    other = RRset(
        name="www.example.com.", rtype="A", ttl=300, contents=("192.0.2.7",), comments=(dns.owner_comment("shop"),)
    )
    with pytest.raises(CodebError, match="was not created by codeb .*take_over=True"):
        dns.plan_record(spec(), zone_with(hand))
    with pytest.raises(CodebError, match="belongs to 'shop'"):
        dns.plan_record(spec(present=False), zone_with(other), present=False)
    taken = dns.plan_record(spec(), zone_with(hand), take_over=True).rrset
    assert taken.owner == "codeb" and note in taken.comments, "the hand-written comment is kept"


def test_zone_plan_creates_then_compares_all_but_the_serial():
    wanted = dns.zone_spec(zone="example.com", nameservers=["ns1.example.com"])
    assert dns.plan_zone(wanted, None).create
    assert dns.plan_zone(wanted, zone_with()) is None
    change = dns.plan_zone(
        dns.zone_spec(zone="example.com", nameservers=["ns1.example.com", "ns2.example.com"], default_ttl=600),
        zone_with(),
    )
    soa, ns = change.replace
    assert (
        soa.contents == ("ns1.example.com. hostmaster.example.com. 2026010101 10800 3600 604800 3600",)
        and soa.ttl == 600
    )
    assert ns.contents == ("ns1.example.com.", "ns2.example.com.")
    assert (
        dns.zone_spec(zone="example.com", nameservers=["ns1.example.com"], hostmaster="dns@Example.com").soa.hostmaster
        == "dns.example.com."
    )
    with pytest.raises(CodebError, match="needs at least one nameserver"):
        dns.zone_spec(zone="example.com", nameservers=[])
    with pytest.raises(CodebError, match="invalid TTL"):
        dns.zone_spec(zone="example.com", nameservers=["ns1.example.com"], default_ttl=30)


def test_owned_rrsets():
    mine = RRset(
        name="a.example.com.",
        rtype="A",
        ttl=300,
        contents=("192.0.2.1",),
        comments=(dns.owner_comment("myapp/production"),),
    )
    theirs = RRset(name="b.example.com.", rtype="A", ttl=300, contents=("192.0.2.1",))
    assert dns.owned_rrsets(zone_with(mine, theirs), "myapp/production") == (mine,)
    assert dns.owned_rrsets(None, "x") == ()
    with pytest.raises(CodebError, match="invalid record owner"):
        dns.owned_rrsets(None, "My App")


def test_dns_settings_from_host_data():
    from codeb_infra.config.app import DnsSettings

    settings = DnsSettings.from_data(
        {
            "private_address": "158.247.203.55",
            "dns_zones": "codeb.kr, example.com",
            "pdns_api_port": "18081",
            "dns_listen": "158.247.203.55,127.0.0.1",
        }
    )
    assert settings.zones == ("codeb.kr.", "example.com.") and settings.nameservers == ("ns1.codeb.kr.",)
    assert settings.dns_listen == ("158.247.203.55", "127.0.0.1")
    assert settings.addresses() == {"A": "158.247.203.55"}, "records point at the server's address by default"
    assert settings.api.url == "http://127.0.0.1:18081" and settings.api.tool == "/opt/codeb/bin/codeb-pdns"
    assert settings.zone_of("myapp-preview.codeb.kr") == "codeb.kr." and settings.zone_of("shop.other.org") is None
    assert DnsSettings.from_data({}).dns_listen == ("0.0.0.0",) and DnsSettings.from_data({}).zones == ("codeb.kr.",)
    for bad, message in [
        ({"dns_listen": "0.0.0"}, "dns_listen"),
        ({"dns_zones": "codeb"}, "invalid zone name"),
        ({"public_address6": "1.2.3.4"}, "invalid AAAA value"),
        ({"pdns_api_port": 70000}, "pdns_api_port"),
    ]:
        with pytest.raises(CodebError, match=message):
            DnsSettings.from_data(bad)
