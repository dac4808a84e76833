"""The network's health findings, judged from what `codeb-health read` reports."""

from __future__ import annotations

from typing import Any

from codeb_infra.domain.mesh_health import ServerNetwork, findings

NOW = 1_800_000_000.0
KEYS = {"app": "A" * 43 + "=", "storage": "S" * 43 + "="}
ALLOWED = {"tcp": (22, 80, 443), "udp": (51820,)}


def read(
    name: str, *, up: bool = True, shakes: dict[str, int] | None = None, listeners: list[Any] = ()
) -> dict[str, Any]:
    wireguard = (
        {"up": True, "public_key": KEYS[name], "handshakes": shakes or {}}
        if up
        else {"up": False, "error": "Unable to access interface: No such device"}
    )
    return {"time": NOW, "wireguard": wireguard, "listeners": list(listeners)}


def server(name: str, **kwargs: Any) -> ServerNetwork:
    return ServerNetwork(name, read(name, **kwargs), public_addresses=("198.51.100.7",), allowed=ALLOWED, mesh=True)


def listener(proto: str, address: str, port: int) -> dict[str, Any]:
    return {"proto": proto, "address": address, "port": port}


def test_a_fresh_handshake_both_ways_and_only_allowed_public_ports_is_clean() -> None:
    app = server(
        "app",
        shakes={KEYS["storage"]: int(NOW) - 30},
        listeners=[
            listener("tcp", "0.0.0.0", 22),
            listener("tcp", "::", 443),
            listener("udp", "0.0.0.0", 51820),
            listener("tcp", "127.0.0.1", 9100),
            listener("tcp", "10.77.0.1", 9100),
        ],
    )
    storage = server("storage", shakes={KEYS["app"]: int(NOW) - 100}, listeners=[listener("tcp", "10.77.0.3", 5432)])
    found, checked = findings([app, storage], 180)
    assert found == []
    assert "app: WireGuard wg0 and 1 peers" in checked


def test_a_stale_or_missing_handshake_is_named_on_the_side_that_sees_it() -> None:
    app = server("app", shakes={KEYS["storage"]: int(NOW) - 600})
    storage = server("storage", shakes={KEYS["app"]: 0})
    found, _ = findings([app, storage], 180)
    assert [(f.server, f.check) for f in found] == [
        ("app", "WireGuard peer storage"),
        ("storage", "WireGuard peer app"),
    ]
    assert "600 s ago" in found[0].problem and "no handshake with app yet" in found[1].problem


def test_an_interface_that_is_down_is_one_finding_with_its_fix() -> None:
    app = server("app", shakes={KEYS["storage"]: int(NOW) - 700})
    storage = server("storage", up=False)
    found, _ = findings([app, storage], 180)
    assert [(f.server, f.check) for f in found] == [("storage", "WireGuard wg0")]  # app's view of it needs its key
    assert "systemctl restart wg-quick@wg0" in found[0].fix


def test_listeners_on_public_or_wildcard_addresses_outside_the_allowed_ports_are_findings() -> None:
    app = server(
        "app",
        shakes={KEYS["storage"]: int(NOW)},
        listeners=[
            listener("tcp", "198.51.100.7", 6379),
            listener("tcp", "0.0.0.0", 9094),
            listener("udp", "::", 9094),
            listener("tcp", "198.51.100.7", 443),
            listener("tcp", "10.88.0.1", 53),
        ],
    )
    found, _ = findings([app], 180)
    assert [f.check for f in found] == [
        "public listener tcp/6379",
        "public listener tcp/9094",
        "public listener udp/9094",
    ]
    assert "every address" in found[1].problem and "198.51.100.7" in found[0].problem


def test_an_unread_server_adds_nothing_and_without_the_mesh_only_listeners_count() -> None:
    plain = ServerNetwork("backup", {"time": NOW, "listeners": [listener("tcp", "0.0.0.0", 9094)]}, allowed=ALLOWED)
    found, checked = findings([ServerNetwork("storage", None), plain], 180)
    assert [f.check for f in found] == ["public listener tcp/9094"]
    assert checked == ["backup: listeners on public addresses"]


def test_the_server_side_reader_decodes_proc_net_addresses() -> None:
    from codeb_infra.remote import codeb_health

    assert codeb_health._socket_address("0100007F:1F90") == ("127.0.0.1", 8080)
    assert codeb_health._socket_address("00000000000000000000000001000000:0016") == ("::1", 22)
    assert codeb_health._socket_address("0000000000000000FFFF00000300A8C0:14EB") == ("::ffff:192.168.0.3", 5355)


def test_a_data_server_that_does_not_answer_is_named_without_its_url() -> None:
    from codeb_infra.domain.mesh_health import unreachable_data

    reach = {
        "DATABASE_URL": {"ok": False, "address": "10.77.0.3:5432", "error": "timed out"},
        "REDIS_URL": {"ok": True, "address": "10.77.0.3:6379"},
    }
    assert unreachable_data(reach) == ["DATABASE_URL's server 10.77.0.3:5432 does not answer (timed out)"]
    assert unreachable_data({"error": "codeb-health is not installed on this server"}) == []


def test_the_server_side_reach_reads_the_last_value_and_never_prints_the_url(tmp_path: Any) -> None:
    import argparse
    import json
    import socket

    from codeb_infra.remote import codeb_health

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        (tmp_path / "a.env").write_text("DATABASE_URL=postgresql://u:pw-secret@127.0.0.1:1/x\nOTHER=1\n")
        (tmp_path / "master.env").write_text(
            f"DATABASE_URL=postgresql://u:pw-secret@127.0.0.1:{port}/x\nREDIS_URL=redis://u:pw-secret@127.0.0.1:1\n"
        )
        found = codeb_health.reach(
            argparse.Namespace(env_file=[str(tmp_path / "a.env"), str(tmp_path / "master.env")], timeout=2.0)
        )
    assert found["DATABASE_URL"] == {"ok": True, "address": f"127.0.0.1:{port}"}
    assert found["REDIS_URL"]["ok"] is False and found["REDIS_URL"]["address"] == "127.0.0.1:1"
    assert "pw-secret" not in json.dumps(found)
