"""The private network and the firewall for real, on the bootstrapped sandbox: an outsider
container on the sandbox's network (standing for the internet) scans every server; storage is
reached over the WireGuard mesh, and a capture of the sandbox network while an app authenticates
and moves a canary holds neither; a rule set that would lock SSH out undoes itself."""

from __future__ import annotations

import json
import re
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeb_infra.config.network import NetworkSettings, public_ports
from codeb_infra.config.roles import StreamingSettings
from codeb_infra.controller import runner
from codeb_infra.flows.health import CADDY_LOCAL_ROOT
from codeb_infra.roles.network import handshake_ages
from codeb_infra.sandbox.engine import connect
from codeb_infra.sandbox.inventory import SHARED_DATA
from codeb_infra.sandbox.model import LABEL, instance, network_name
from codeb_infra.sandbox.servers import ULIMITS, find_containers
from codeb_infra.sandbox.standin import CLIENT_BODY
from tests.sandbox.conftest import REPO, Bootstrapped, must, start_wireguard
from tests.support import isolated
from tests.support.images import ensure_images
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

ROLES = ("app", "streaming", "storage", "backup")
# What a scan from the internet may find open (the firewall's list for the role), and what it must
# find open (Caddy listens on 80 and 443 once a site is deployed; streaming's ws site always is).
ALLOWED_OPEN = {"app": {22, 53, 80, 443}, "streaming": {22, 80, 443}, "storage": {22}, "backup": {22}}
MUST_BE_OPEN = {"app": {22, 53}, "streaming": {22, 80, 443}, "storage": {22}, "backup": {22}}
# Well-known ports, and every port a codeb service or a slot uses.
SCAN_PORTS = sorted(
    {
        *range(1, 1025),
        2019,
        5432,
        6379,
        7777,
        8000,
        8081,
        9000,
        9090,
        9093,
        9100,
        9121,
        9187,
        *range(4000, 4010),
        *range(4500, 4510),
    }
)
PROBE_PORT = 7777
_CENTRIFUGO = StreamingSettings(private_address="127.0.0.1")
CLIENT_PORT, INTERNAL_PORT = _CENTRIFUGO.centrifugo_port, _CENTRIFUGO.centrifugo_internal_port
SCAN = r"""
import asyncio, json, sys
targets, ports = json.loads(sys.argv[1]), json.loads(sys.argv[2])
async def probe(gate, address, port):
    async with gate:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 2)
        except Exception:
            return None
        writer.close()
        return port
async def main():
    gate = asyncio.Semaphore(400)
    found = {}
    for role, address in targets.items():
        results = await asyncio.gather(*(probe(gate, address, p) for p in ports))
        found[role] = sorted(p for p in results if p)
    print(json.dumps(found))
asyncio.run(main())
"""


def _quiet(_: str) -> None:
    pass


def outsider(command: list[str], environment: dict[str, str] | None = None) -> tuple[str, str]:
    """Run a command in a container on the sandbox network that is none of the servers (the
    internet, as the servers see it); its stdout and stderr."""
    with connect(_quiet) as engine:
        image = find_containers(engine)["storage"].image.id
        container = engine.client.containers.run(
            image,
            command,
            name=f"{instance()}-outsider",
            labels={LABEL: instance()},
            network=network_name(),
            environment=environment or {},
            ulimits=ULIMITS,
            detach=True,
        )
        try:
            container.wait(timeout=300)
            return (
                container.logs(stdout=True, stderr=False).decode(),
                container.logs(stdout=False, stderr=True).decode(),
            )
        finally:
            container.remove(force=True)


def outsider_scan(info: object, targets: dict[str, str]) -> dict[str, set[int]]:
    """TCP connect scan from the outsider."""
    output, _ = outsider(["python3", "-c", SCAN, json.dumps(targets), json.dumps(SCAN_PORTS)])
    return {role: set(ports) for role, ports in json.loads(output.strip().splitlines()[-1]).items()}


@pytest.fixture(scope="module")
def net(bootstrapped: Bootstrapped) -> Iterator[Bootstrapped]:
    """A listener on every address of the storage server (one a firewall must hide), and the
    clients the app server's apps would use."""
    must(
        ssh(
            bootstrapped.info,
            "app",
            "command -v psql >/dev/null && command -v redis-cli >/dev/null || "
            "{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            "postgresql-client redis-tools >/dev/null; }",
            timeout=600,
        )
    )
    must(
        ssh(
            bootstrapped.info,
            "storage",
            "systemctl stop codeb-test-listener 2>/dev/null; "
            f"systemd-run --unit=codeb-test-listener -p RuntimeMaxSec=600 python3 -m http.server {PROBE_PORT} "
            "--bind 0.0.0.0 --directory /var/empty",
        )
    )
    try:
        yield bootstrapped
    finally:
        ssh(bootstrapped.info, "storage", "systemctl stop codeb-test-listener")


def test_an_outsider_finds_only_the_allowed_ports_open(net: Bootstrapped) -> None:
    open_ports = outsider_scan(net.info, {role: net.address(role) for role in ROLES})
    settings = NetworkSettings.from_data(SHARED_DATA)
    for role in ROLES:
        assert MUST_BE_OPEN[role] <= open_ports[role] <= ALLOWED_OPEN[role], (role, open_ports[role])
        assert ALLOWED_OPEN[role] == set(public_ports([role], settings)["tcp"]), role
    # Centrifugo's client and internal ports are not reachable from outside: browsers come through Caddy.
    assert not {CLIENT_PORT, INTERNAL_PORT} & open_ports["streaming"]
    # The same listener answers a mesh peer: everything else is open to the mesh only.
    reply = must(
        ssh(
            net.info,
            "app",
            f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://{net.internal('storage')}:{PROBE_PORT}/",
        )
    )
    assert reply in {"200", "404"}
    print(f"\nopen to the outsider: {json.dumps({r: sorted(p) for r, p in open_ports.items()})}")


WS_REQUESTS = r"""printf '%s' "$CA" > /tmp/ca.pem
ask() { curl -sS --max-time 10 --cacert /tmp/ca.pem --resolve "ws.codeb.test:443:$ADDRESS" "$@"; }
ask -H 'Connection: Upgrade' -H 'Upgrade: websocket' -o /tmp/body -w '%{http_code}\n' https://ws.codeb.test/connection/websocket
ask -o /dev/null -w '%{http_code}\n' https://ws.codeb.test/health
cat /tmp/body
"""


def test_browsers_reach_centrifugo_as_wss_ws_domain_through_caddy_and_its_api_stays_on_the_mesh(
    net: Bootstrapped,
) -> None:
    """From the outsider: ws.codeb.test as PowerDNS answers it, over HTTPS verified against the
    streaming server's Caddy CA (the sandbox's `tls internal`, as for the app server's sites),
    reaches the stand-in's client endpoint through Caddy; its health (with the real Centrifugo
    also the API, admin and metrics) is not served there. The stand-in is busybox httpd, which
    cannot answer a WebSocket upgrade with 101: the request carries the upgrade headers and the
    stand-in's fixed answer shows it arrived; the 101 handshake itself is not shown here.
    From a mesh peer, the internal port answers and the client port is not published."""
    info, streaming = net.info, net.address("streaming")
    answer = must(ssh(info, "app", f"dig +short @{net.address('app')} ws.codeb.test")).split()
    assert answer == [streaming]
    root = must(ssh(info, "streaming", f"cat {CADDY_LOCAL_ROOT}"))
    out, err = outsider(["sh", "-c", WS_REQUESTS], {"CA": root, "ADDRESS": answer[0]})
    assert out.splitlines() == ["200", "404", CLIENT_BODY], (out, err)

    mesh = net.internal("streaming")
    ask = "curl -s -o /dev/null -w '%{http_code}' --max-time 5"
    assert must(ssh(info, "app", f"{ask} http://{mesh}:{INTERNAL_PORT}/health")) == "200"
    assert must(ssh(info, "app", f"{ask} http://{mesh}:{INTERNAL_PORT}/connection/websocket")) == "404"
    refused = ssh(info, "app", f"{ask} http://{mesh}:{CLIENT_PORT}/connection/websocket")
    assert refused.returncode == 7, (refused.returncode, refused.stdout)  # 7: connection refused


def sandbox_bridge() -> str:
    found = subprocess.run(
        ["podman", "network", "inspect", network_name(), "--format", "{{.NetworkInterface}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


def master_env(info: object, project: str) -> dict[str, str]:
    text = must(ssh(info, "app", f"cat /opt/codeb/env/{project}/master.env"))  # type: ignore[arg-type]
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


APP_CLIENT = r"""set -e
set -a; . /opt/codeb/env/{project}/master.env; set +a
read -r canary
psql -X -q -tA -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "create table if not exists canary (v text)" \
  -c "insert into canary values ('$canary')" -c "select count(*) from canary where v = '$canary'"
redis-cli --no-auth-warning -u "$REDIS_URL" set "{project}:canary" "$canary" >/dev/null
redis-cli --no-auth-warning -u "$REDIS_URL" get "{project}:canary"
"""


def test_apps_reach_storage_over_the_mesh_and_the_wire_shows_no_canary_or_password(net: Bootstrapped) -> None:
    info, project = net.info, "meshcheck"
    provision = subprocess.run(
        [sys.executable, "-m", "codeb_infra", "provision", project, "-i", str(info.inventory)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        check=False,
    )
    assert provision.returncode == 0, provision.stdout[-3000:] + provision.stderr[-3000:]
    env = master_env(info, project)
    storage = net.internal("storage")
    assert f"@{storage}:5432/" in env["DATABASE_URL"] and f"@{storage}:6379" in env["REDIS_URL"]
    passwords = [env["POSTGRES_PASSWORD"], env["REDIS_URL"].split(":", 2)[2].rsplit("@", 1)[0]]
    assert all(len(p) >= 16 for p in passwords)

    canary = f"canary-{secrets.token_hex(12)}"
    capture = Path(f"/tmp/{instance()}-mesh.pcap")
    tcpdump = subprocess.Popen(
        ["tcpdump", "-i", sandbox_bridge(), "-U", "-s", "0", "-w", str(capture)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(2)
        out = must(ssh(info, "app", APP_CLIENT.format(project=project), stdin=canary + "\n"))
        time.sleep(2)
    finally:
        tcpdump.terminate()
        tcpdump.wait(timeout=10)
    assert out.split() == ["1", canary]
    wire = capture.read_bytes()
    capture.unlink()
    summary = subprocess.run(["tcpdump", "-nr", "-", "udp port 51820"], input=wire, capture_output=True, check=False)
    wireguard_packets = summary.stdout.count(b"\n")
    assert wireguard_packets > 10, "the capture saw no WireGuard traffic: it watched the wrong interface"
    assert canary.encode() not in wire
    for password in passwords:
        assert password.encode() not in wire
    assert b"SCRAM-SHA-256" not in wire and b"AUTH" not in wire
    print(f"\ncapture: {len(wire)} bytes, {wireguard_packets} WireGuard packets, no canary, no password")


def test_every_peer_has_a_fresh_handshake(net: Bootstrapped) -> None:
    ages = isolated.call(runner.read_groups, str(net.info.inventory), dict.fromkeys(ROLES, handshake_ages))
    for role in ROLES:
        peers = ages[role]
        assert set(peers) == set(ROLES) - {role}, role
        assert all(age is not None and age < 180 for age in peers.values()), (role, peers)


def test_exporters_answer_the_monitoring_server_only(net: Bootstrapped) -> None:
    """Another mesh peer (the app server) gets no answer from storage's exporters; backup does."""
    for port in (9100, 9187):
        url = f"http://{net.internal('storage')}:{port}/metrics"
        scraped = ssh(net.info, "backup", f"curl -sf -o /dev/null --max-time 10 {url}")
        assert scraped.returncode == 0, (url, scraped.stderr)
        asked = ssh(net.info, "app", f"curl -sf -o /dev/null --max-time 3 {url}")
        assert asked.returncode == 28, (url, asked.returncode, asked.stderr)  # 28: timed out (dropped)


def test_wal_is_archived_to_the_backup_server_over_the_mesh(net: Bootstrapped) -> None:
    info = net.info
    alias = must(ssh(info, "storage", "cat /etc/ssh/ssh_config.d/codeb-backup.conf"))
    assert re.search(rf"HostName\s+{re.escape(net.internal('backup'))}\b", alias), alias
    keys = must(ssh(info, "backup", "cat /var/lib/codeb-backup/.ssh/authorized_keys"))
    assert f'from="{net.internal("storage")}"' in keys and f'from="{net.address("storage")}"' not in keys
    count = "select archived_count from pg_stat_archiver"
    before = int(must(ssh(info, "storage", f"runuser -u postgres -- psql -X -tA -c {shlex.quote(count)}")).strip())
    must(
        ssh(
            info,
            "storage",
            "runuser -u postgres -- psql -X -tA -c 'create table if not exists mesh_wal (x int)' "
            "-c 'insert into mesh_wal values (1)' -c 'select pg_switch_wal()'",
        )
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = int(must(ssh(info, "storage", f"runuser -u postgres -- psql -X -tA -c {shlex.quote(count)}")).strip())
        if now > before:
            return
        time.sleep(2)
    pytest.fail("no WAL segment was archived over the mesh within 60 s")


def test_with_storage_off_the_mesh_a_deploy_refuses_and_nothing_is_lost(net: Bootstrapped) -> None:
    info, project = net.info, "meshcheck"  # provisioned, with a canary row, by the mesh test above
    image = ensure_images()["v1"]
    must(ssh(info, "storage", "systemctl stop wg-quick@wg0.service"))
    try:
        deploy = subprocess.run(
            [
                sys.executable,
                "-m",
                "codeb_infra",
                "deploy",
                project,
                "--image",
                image,
                "--push",
                "-i",
                str(info.inventory),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
            check=False,
        )
        said = deploy.stdout + deploy.stderr
        assert deploy.returncode == 1, said[-3000:]
        storage = net.internal("storage")
        assert f"DATABASE_URL's server {storage}:5432 does not answer" in said, said[-3000:]
        assert "nothing was deployed" in said and master_env(info, project)["POSTGRES_PASSWORD"] not in said
        assert (
            must(ssh(info, "app", f"podman ps -a --format '{{{{.Names}}}}' | grep -c '^{project}-' || true")).strip()
            == "0"
        )
    finally:
        start_wireguard(net, "storage")
    count = must(
        ssh(
            info,
            "app",
            f"set -a; . /opt/codeb/env/{project}/master.env; set +a; for i in $(seq 20); do"
            " psql -X -tA \"$DATABASE_URL\" -c 'select count(*) from canary' 2>/dev/null && break;"
            " sleep 0.5; done",
        )
    )
    assert int(count.split()[-1]) >= 1  # the canary rows (one per run on a reused sandbox) are all there


def test_second_bootstrap_left_mesh_and_firewall_alone(net: Bootstrapped) -> None:
    second = net.second.output
    assert second.count("table inet codeb loaded as written") == 4, second[-3000:]
    assert second.count("/etc/wireguard/wg0.conf as wanted, 3 peers") == 4
    for role in ROLES:
        table = must(ssh(net.info, role, "nft -j list table inet codeb >/dev/null && nft list tables"))
        assert "table inet codeb" in table


def test_a_rule_set_that_locks_ssh_out_undoes_itself(net: Bootstrapped) -> None:
    info = net.info
    before = must(ssh(info, "storage", "nft list table inet codeb"))
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyinfra",
            "-y",
            str(info.inventory),
            "deploys/bootstrap.py",
            "--data",
            "ssh_allowed_from=192.0.2.1/32",
            "--data",
            "network_confirm_seconds=15",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        check=False,
    )
    seconds = time.monotonic() - started
    output = run.stdout + run.stderr
    assert run.returncode != 0
    for role in ROLES:
        assert f"firewall change on {role} undone by the server itself" in output, output[-4000:]
    # A new connection gets in again, and the rules are the ones from before.
    assert must(ssh(info, "storage", "nft list table inet codeb")) == before
    assert "192.0.2.1" not in before
    print(f"\nlocked-out change undone by the servers themselves; run took {seconds:.1f}s")


@pytest.mark.restarts_servers
def test_a_restarted_server_comes_back_with_its_firewall_and_mesh_link(net: Bootstrapped) -> None:
    info = net.info
    with connect(_quiet) as engine:
        container = engine.client.containers.get(info.servers["storage"].container)
        container.stop(timeout=30)
        container.start()
    deadline = time.monotonic() + 240
    reached = None
    while time.monotonic() < deadline:
        # From the app server, through the mesh: PostgreSQL and Redis are back on storage's mesh address.
        reached = ssh(
            info,
            "app",
            f"timeout 3 bash -c '</dev/tcp/{net.internal('storage')}/5432' && "
            f"timeout 3 bash -c '</dev/tcp/{net.internal('storage')}/6379'",
            timeout=30,
        )
        if reached.returncode == 0:
            break
        time.sleep(3)
    assert reached is not None and reached.returncode == 0, "storage is not reachable over the mesh after a restart"
    rules = must(ssh(info, "storage", "nft list table inet codeb"))
    assert "policy drop" in rules and 'iifname "wg0"' in rules
    assert must(ssh(info, "storage", "systemctl is-active wg-quick@wg0 nftables")).split() == ["active", "active"]
