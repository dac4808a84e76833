"""The mesh and firewall settings, the text they render, and their operations: given these facts
(here and on the other servers), these commands or a no-op."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pyinfra.api import FunctionCommand, StringCommand
from pyinfra.api.exceptions import OperationError
from pyinfra.context import ctx_host

from codeb_infra.commands import confirm
from codeb_infra.config.network import (
    WIREGUARD_CONFIG,
    WIREGUARD_PUBLIC_KEY,
    NetworkSettings,
    Peer,
    firewall_rules,
    handshake_ages,
    mesh_hosts,
    public_ports,
    stale_peers,
    wireguard_config,
)
from codeb_infra.domain.errors import CodebError
from codeb_infra.facts.files import TextFile
from codeb_infra.facts.network import (
    Firewall,
    FirewallState,
    WireguardHandshakes,
    WireguardPublicKey,
    table_rules,
)
from codeb_infra.operations import nftables, wireguard

KEYS = {
    "app": "lJMmLpV/6D5hnBJoYm/YP6Ic+M6B+89HtNYI9a+57A4=",
    "storage": "TjVV1VoA1A7j7p9yO7fYGrdeC8Us8w845OMT7tYP3DY=",
    "backup": "S8lJM3EGhTsBmGFCsAZdBNMCnNcvv9/biJhati0WN+U=",
}
MESH = {"mesh_network": "10.77.0.0/24"}


def settings(**data: Any) -> NetworkSettings:
    return NetworkSettings.from_data({**MESH, **data})


def members() -> Any:
    return mesh_hosts(
        [
            ("app", ["app"], {**MESH, "private_address": "192.0.2.10"}),
            ("storage", ["storage"], {**MESH, "private_address": "192.0.2.12", "public_address": "198.51.100.12"}),
            ("backup", ["backup"], {**MESH, "private_address": "192.0.2.13", "wireguard_port": 51000}),
        ]
    )


# --- settings and addresses -------------------------------------------------------------------


def test_mesh_addresses_follow_the_role_order_unless_given():
    found = {m.host: (m.address, m.endpoint, m.port) for m in members()}
    assert found == {
        "app": ("10.77.0.1", "192.0.2.10", 51820),
        "storage": ("10.77.0.3", "198.51.100.12", 51820),  # public_address wins over private_address
        "backup": ("10.77.0.4", "192.0.2.13", 51000),
    }
    given = mesh_hosts([("db", ["storage"], {**MESH, "private_address": "192.0.2.1", "mesh_address": "10.77.0.40"})])
    assert given[0].address == "10.77.0.40"


def test_no_mesh_without_mesh_network():
    assert mesh_hosts([("app", ["app"], {"private_address": "192.0.2.10"})]) == ()
    assert not NetworkSettings.from_data({}).mesh and not NetworkSettings.from_data({}).firewall_on
    assert settings().firewall_on and not settings(firewall=False).firewall_on


@pytest.mark.parametrize(
    "data, message",
    [
        ({"mesh_network": "8.8.8.0/24"}, "private range"),
        ({"mesh_network": "10.77.0.0/30"}, "private range"),
        ({"mesh_network": "10.77.0.1/24"}, "CIDR"),
        ({"mesh_network": "nonsense"}, "CIDR"),
        ({**MESH, "wireguard_port": 0}, "between 1 and 65535"),
        ({**MESH, "ssh_allowed_from": []}, "at least one"),
        ({**MESH, "ssh_allowed_from": ["10.0.0.0/8", "evil; drop"]}, "invalid network"),
        ({**MESH, "network_confirm_seconds": 5}, "between 10 and 600"),
        ({**MESH, "firewall_trusted_interfaces": ["eth0\nx"]}, "invalid interface"),
    ],
)
def test_bad_network_settings_are_one_clear_error(data: dict[str, Any], message: str):
    with pytest.raises(CodebError, match=message):
        NetworkSettings.from_data(data)


def test_mesh_address_outside_the_network_or_taken_twice_is_refused():
    with pytest.raises(CodebError, match="not a host address of 10.77.0.0/24"):
        mesh_hosts([("app", ["app"], {**MESH, "private_address": "192.0.2.1", "mesh_address": "10.78.0.1"})])
    with pytest.raises(CodebError, match="same mesh address 10.77.0.1"):
        mesh_hosts(
            [
                ("a", ["app"], {**MESH, "private_address": "192.0.2.1"}),
                ("b", ["app"], {**MESH, "private_address": "192.0.2.2"}),
            ]
        )
    with pytest.raises(CodebError, match="different mesh networks"):
        mesh_hosts(
            [
                ("a", ["app"], {**MESH, "private_address": "192.0.2.1"}),
                ("b", ["storage"], {"mesh_network": "10.78.0.0/24", "private_address": "192.0.2.2"}),
            ]
        )


# --- rendered text ----------------------------------------------------------------------------


def test_wireguard_config_names_each_peer_and_holds_no_private_key():
    peers = [
        Peer(host="storage", address="10.77.0.3", endpoint="198.51.100.12", port=51820, public_key=KEYS["storage"]),
        Peer(host="backup", address="10.77.0.4", endpoint="2001:db8::4", port=51000, public_key=KEYS["backup"]),
    ]
    text = wireguard_config(address="10.77.0.1", mesh_network="10.77.0.0/24", port=51820, peers=peers)
    assert "Address = 10.77.0.1/24\nListenPort = 51820\nPostUp = wg set %i private-key /etc/wireguard/codeb.key" in text
    assert "PrivateKey" not in text
    assert text.index(KEYS["storage"]) < text.index(KEYS["backup"])
    assert (
        f"PublicKey = {KEYS['backup']}\nAllowedIPs = 10.77.0.4/32\nEndpoint = [2001:db8::4]:51000\nPersistentKeepalive = 25"
        in text
    )
    with pytest.raises(CodebError, match="not a WireGuard public key"):
        wireguard_config(
            address="10.77.0.1",
            mesh_network="10.77.0.0/24",
            port=51820,
            peers=[Peer(host="x", address="10.77.0.9", endpoint="192.0.2.9", port=1, public_key="a\nb")],
        )


def rule_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("\t\t")]


def test_app_firewall_lets_in_web_dns_ssh_and_wireguard_and_mesh_peers_over_wg0_only():
    text = firewall_rules(["app"], settings(), ["10.77.0.3", "10.77.0.4"])
    assert text.startswith("# Written by codeb-infra") and "flush" not in text
    assert "table inet codeb\ndelete table inet codeb\ntable inet codeb {" in text
    assert rule_lines(text) == [
        "type filter hook input priority filter; policy drop;",
        "ct state established,related accept",
        "ct state invalid drop",
        'iif "lo" accept',
        "meta l4proto { icmp, ipv6-icmp } accept",
        'iifname "wg0" ip saddr { 10.77.0.3, 10.77.0.4 } accept comment "mesh peers"',
        'iifname "podman*" accept comment "this server\'s containers"',
        'tcp dport { 22 } accept comment "SSH"',
        'udp dport { 51820 } accept comment "WireGuard"',
        'tcp dport { 80, 443 } accept comment "HTTP and HTTPS"',
        'udp dport { 443 } accept comment "HTTP/3"',
        'tcp dport { 53 } accept comment "DNS"',
        'udp dport { 53 } accept comment "DNS"',
    ]


def test_storage_firewall_opens_nothing_but_ssh_and_wireguard_and_ssh_only_from_where_allowed():
    text = firewall_rules(["storage"], settings(ssh_allowed_from=["203.0.113.0/24", "2001:db8::/32"]), ["10.77.0.1"])
    rules = rule_lines(text)
    assert 'ip saddr { 203.0.113.0/24 } tcp dport { 22 } accept comment "SSH"' in rules
    assert 'ip6 saddr { 2001:db8::/32 } tcp dport { 22 } accept comment "SSH"' in rules
    assert not any("80" in r or "5432" in r or "6379" in r or "53 }" in r for r in rules)
    assert public_ports(["storage"], settings()) == {"tcp": (22,), "udp": (51820,)}
    assert public_ports(["streaming"], settings()) == {"tcp": (22, 80, 443), "udp": (443, 51820)}
    assert public_ports(["app"], settings()) == {"tcp": (22, 53, 80, 443), "udp": (53, 443, 51820)}


def test_streaming_firewall_lets_in_https_for_ws_and_no_centrifugo_port():
    rules = rule_lines(firewall_rules(["streaming"], settings(), ["10.77.0.1"]))
    assert 'tcp dport { 80, 443 } accept comment "HTTP and HTTPS"' in rules
    assert 'udp dport { 443 } accept comment "HTTP/3"' in rules
    assert not any("8000" in r or "9000" in r or "53 }" in r for r in rules)


def test_exporters_answer_the_monitoring_server_only_and_the_rule_comes_before_the_mesh_accept():
    rules = rule_lines(firewall_rules(["storage"], settings(), ["10.77.0.1", "10.77.0.4"], monitor="10.77.0.4"))
    drop = 'ip saddr != 10.77.0.4 tcp dport { 9100, 9121, 9180, 9187 } drop comment "exporters: the monitoring server only"'
    assert rules.index(drop) < rules.index(
        'iifname "wg0" ip saddr { 10.77.0.1, 10.77.0.4 } accept comment "mesh peers"'
    )
    assert not any("saddr !=" in r for r in rule_lines(firewall_rules(["backup"], settings(), ["10.77.0.1"])))


def test_firewall_without_mesh_lets_peers_in_by_address_on_any_interface():
    text = firewall_rules(["storage"], NetworkSettings.from_data({"firewall": True}), ["192.0.2.10"])
    assert 'ip saddr { 192.0.2.10 } accept comment "mesh peers"' in rule_lines(text)
    assert "51820" not in text


def test_handshake_ages_and_stale_peers():
    ages = handshake_ages({KEYS["app"]: 1000, KEYS["storage"]: 0, KEYS["backup"]: 700}, now=1100)
    assert ages == {KEYS["app"]: 100, KEYS["storage"]: None, KEYS["backup"]: 400}
    assert stale_peers(ages) == sorted([KEYS["storage"], KEYS["backup"]])


# --- facts -------------------------------------------------------------------------------------


def test_handshake_fact_parses_wg_show_and_knows_a_missing_interface():
    fact = WireguardHandshakes()
    assert fact.process([f"{KEYS['app']}\t1700000000", f"{KEYS['storage']}\t0"]) == {
        KEYS["app"]: 1700000000,
        KEYS["storage"]: 0,
    }
    assert fact.process(["__codeb_no_interface__"]) is None
    with pytest.raises(CodebError, match="unexpected"):
        fact.process(["garbage"])


def listing(*rules: dict[str, Any], handle_base: int = 1) -> str:
    items: list[dict[str, Any]] = [
        {"metainfo": {"version": "1.0.6"}},
        {"table": {"family": "inet", "name": "codeb", "handle": handle_base}},
    ]
    items += [{"rule": {**rule, "handle": handle_base + i}} for i, rule in enumerate(rules)]
    return json.dumps({"nftables": items})


def test_firewall_fact_tells_drift_but_not_renumbered_handles():
    accept = {"family": "inet", "table": "codeb", "chain": "input", "expr": [{"accept": None}]}
    fact = FirewallState()
    same = fact.process([listing(accept, handle_base=9), listing(accept)])
    assert not same.drifted and same.rule_count == 1
    edited = fact.process([listing(accept, {**accept, "comment": "by hand"}), listing(accept)])
    assert edited.drifted
    gone = fact.process(["__codeb_missing__", listing(accept)])
    assert gone.live is None and gone.drifted
    assert table_rules("__codeb_missing__") is None
    with pytest.raises(CodebError, match="unexpected"):
        fact.process(["{not json", listing(accept)])


# --- operations --------------------------------------------------------------------------------


class Inventory:
    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}

    def get_host(self, name: str, default: Any = None) -> Any:
        return self.hosts.get(name, default)


class State:
    def __init__(self, executing: bool) -> None:
        self.is_executing = executing
        self.inventory = Inventory()


class Host:
    def __init__(self, name: str, facts: dict[Any, Any], state: State) -> None:
        self.name = name
        self.facts = facts
        self.noops: list[str] = []
        self.state = state
        state.inventory.hosts[name] = self

    def get_fact(self, cls: type, *args: Any, **kwargs: Any) -> Any:
        for key in ((cls, kwargs.get("path")), cls):
            if key in self.facts:
                return self.facts[key]
        return cls().default()

    def noop(self, description: str) -> None:
        self.noops.append(description)


@pytest.fixture(autouse=True)
def marker_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    def marker(verb: str):
        def inner(**kwargs: Any) -> Iterator[StringCommand]:
            target = kwargs.get("dest") or kwargs.get("path") or kwargs.get("service")
            flags = " ".join(
                f"{k}={v}" for k, v in sorted(kwargs.items()) if k in ("restarted", "running", "daemon_reload")
            )
            yield StringCommand(verb, target, flags) if flags else StringCommand(verb, target)

        return inner

    for module in (nftables, wireguard):
        for verb in ("put", "directory"):
            monkeypatch.setattr(getattr(module.files, verb), "_inner", marker(verb))
        monkeypatch.setattr(module.systemd.service, "_inner", marker("service"))


def run(op: Any, host: Host, **kwargs: Any) -> list[str]:
    with ctx_host.use(host):
        return [c.function.__name__ if isinstance(c, FunctionCommand) else str(c).strip() for c in op._inner(**kwargs)]


def mesh_state(executing: bool, keys: dict[str, str]) -> State:
    state = State(executing)
    for name in ("app", "storage", "backup"):
        facts = {(WireguardPublicKey, WIREGUARD_PUBLIC_KEY): keys[name]} if name in keys else {}
        Host(name, facts, state)
    return state


def test_mesh_config_is_made_from_the_other_servers_public_keys_then_confirmed():
    state = mesh_state(True, KEYS)
    app = state.inventory.hosts["app"]
    out = run(wireguard.mesh, app, mesh_network="10.77.0.0/24", members=members(), confirm_seconds=30)
    assert out[0].startswith("if systemctl is-active --quiet codeb-network-revert.timer")
    assert "--on-active=30s" in out[0] and "systemctl restart wg-quick@wg0.service" in out[0]
    assert out[1:] == [
        f"put {WIREGUARD_CONFIG}",
        "service wg-quick@wg0.service restarted=True running=True",
        "confirm_change",
    ]


def test_mesh_unchanged_is_a_noop_and_a_missing_peer_key_fails_only_when_running():
    prepare = mesh_state(False, {"app": KEYS["app"]})
    out = run(wireguard.mesh, prepare.inventory.hosts["app"], mesh_network="10.77.0.0/24", members=members())
    assert "confirm_change" in out  # will change: the peers' keys are still to be made
    executing = mesh_state(True, {"app": KEYS["app"]})
    with pytest.raises(OperationError, match="no WireGuard key on storage, backup"):
        run(wireguard.mesh, executing.inventory.hosts["app"], mesh_network="10.77.0.0/24", members=members())

    state = mesh_state(True, KEYS)
    app = state.inventory.hosts["app"]
    peers = [
        Peer(host=m.host, address=m.address, endpoint=m.endpoint, port=m.port, public_key=KEYS[m.host])
        for m in members()
        if m.host != "app"
    ]
    app.facts[(TextFile, WIREGUARD_CONFIG)] = wireguard_config(
        address="10.77.0.1", mesh_network="10.77.0.0/24", port=51820, peers=peers
    ).rstrip("\n")
    out = run(wireguard.mesh, app, mesh_network="10.77.0.0/24", members=members())
    assert out == ["service wg-quick@wg0.service running=True"]
    assert app.noops == ["/etc/wireguard/wg0.conf as wanted, 2 peers"]


def test_key_is_made_on_the_server_once():
    state = State(True)
    fresh = Host("app", {}, state)
    (line,) = run(wireguard.key, fresh)
    assert "wg genkey" in line and "umask 077" in line and "chmod 600 /etc/wireguard/codeb.key" in line
    assert "[ -s /etc/wireguard/codeb.key ] ||" in line  # an existing key is never replaced
    from pyinfra.facts.files import File

    kept = Host("app2", {File: {"mode": 600}, WireguardPublicKey: KEYS["app"]}, state)
    assert run(wireguard.key, kept) == [] and kept.noops == ["/etc/wireguard/codeb.key exists"]


def test_firewall_change_is_checked_armed_loaded_recorded_then_confirmed():
    rules = firewall_rules(["storage"], settings(), ["10.77.0.1"])
    host = Host("storage", {}, State(True))
    out = run(nftables.firewall, host, rules=rules, confirm_seconds=20)
    assert out[:2] == [
        "put /etc/systemd/system/nftables.service.d/codeb.conf",
        "service nftables.service daemon_reload=True",
    ]
    assert out[2:5] == [
        "directory /etc/codeb/nftables",
        "put /etc/codeb/nftables/codeb.nft.new",
        "nft -c -f /etc/codeb/nftables/codeb.nft.new",
    ]
    assert (
        out[5].startswith("if systemctl is-active --quiet codeb-network-revert.timer") and "--on-active=20s" in out[5]
    )
    assert out[6:] == [
        "mv -f /etc/codeb/nftables/codeb.nft.new /etc/codeb/nftables/codeb.nft",
        "put /etc/nftables.conf",
        "nft -f /etc/codeb/nftables/codeb.nft",
        "nft -j list table inet codeb > /etc/codeb/nftables/loaded.json",
        "confirm_change",
    ]


def test_firewall_as_loaded_is_a_noop_and_drift_reloads_it():
    from codeb_infra.config.network import FIREWALL_RULES, NFTABLES_CONF, nftables_conf

    rules = firewall_rules(["storage"], settings(), ["10.77.0.1"])
    loaded = [{"rule": {"expr": []}}]
    facts = {
        (TextFile, FIREWALL_RULES): rules.rstrip("\n"),
        (TextFile, NFTABLES_CONF): nftables_conf().rstrip("\n"),
        (TextFile, nftables.SERVICE_DROP_IN): nftables.SERVICE_OVERRIDE.rstrip("\n"),
        FirewallState: Firewall(live=loaded, recorded=loaded),
    }
    host = Host("storage", facts, State(True))
    # The service stays enabled; no daemon-reload when nothing changed (that would count as a change).
    assert run(nftables.firewall, host, rules=rules) == ["service nftables.service daemon_reload=False"]
    assert host.noops == ["table inet codeb loaded as written (1 rules)"]
    facts[FirewallState] = Firewall(live=[], recorded=loaded)
    assert "nft -f /etc/codeb/nftables/codeb.nft" in run(nftables.firewall, Host("s2", facts, State(True)), rules=rules)


def test_revert_line_refuses_what_systemd_would_expand():
    with pytest.raises(ValueError):
        confirm.arm(paths=("/etc/x",), restore="echo $HOME", seconds=10)
    line = str(confirm.disarm())
    assert "systemctl stop codeb-network-revert.timer" in line and "echo confirmed" in line and "echo expired" in line


def test_a_peer_change_is_applied_to_the_running_interface_without_a_restart():
    state = mesh_state(True, KEYS)
    app = state.inventory.hosts["app"]
    old_peer = Peer(host="storage", address="10.77.0.3", endpoint="192.0.2.99", port=51820, public_key=KEYS["storage"])
    app.facts[(TextFile, WIREGUARD_CONFIG)] = wireguard_config(
        address="10.77.0.1", mesh_network="10.77.0.0/24", port=51820, peers=[old_peer]
    )
    out = run(wireguard.mesh, app, mesh_network="10.77.0.0/24", members=members())
    assert out[1:3] == [f"put {WIREGUARD_CONFIG}", "service wg-quick@wg0.service running=True"]
    assert out[3].startswith("bash -c 'wg syncconf wg0 <(wg-quick strip /etc/wireguard/wg0.conf")
    assert "getline k < f" in out[3] and "restarted" not in " ".join(out)
    assert "wg syncconf" in out[0]  # the undo applies the saved peers the same way
