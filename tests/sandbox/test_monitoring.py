"""Monitoring in the sandbox: every Prometheus target up, exporters on private addresses only, the
slot-down alert firing in Alertmanager when a slot's container stops, resolving once it is back,
and the archiving alert firing while the backup server's sshd is stopped.
The sandbox's host data shortens the intervals (scrape and evaluation 5 s, codeb's checks 10 s)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codeb_infra.sandbox import SandboxInfo
from codeb_infra.sandbox.engine import connect
from codeb_infra.sandbox.model import container_name
from tests.sandbox.conftest import Bootstrapped
from tests.support.images import ensure_images
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "mon"
ALERT_BOUND = 120.0
"""Seconds within which the alert must fire (and resolve): codeb's checks every 10 s, scrapes and
evaluations every 5 s, the rule's 20 s `for`, Alertmanager's intake; on a busy shared machine."""


def codeb(info: SandboxInfo, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "codeb_infra.cli", *args, "-i", str(info.inventory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


def api(info: SandboxInfo, url: str, query: str = "") -> Any:
    """GET a Prometheus or Alertmanager API on the backup server's loopback, from the server itself."""
    data = f" --data-urlencode 'query={query}'" if query else ""
    result = ssh(info, "backup", f"curl -sfG{data} 'http://127.0.0.1:{url}'")
    assert result.returncode == 0, f"{url}: {result.stdout}{result.stderr}"
    return json.loads(result.stdout)


def wait_for(what: str, check: Callable[[], bool], bound: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < bound, f"{what} not within {bound:.0f}s"
        time.sleep(2)
    return time.monotonic() - started


def targets(info: SandboxInfo) -> dict[str, str]:
    found = api(info, "9090/api/v1/query", "up")["data"]["result"]
    return {f"{r['metric']['job']} {r['metric']['instance']}": r["value"][1] for r in found}


def slot_alerts(info: SandboxInfo) -> list[dict]:
    return [
        a
        for a in api(info, "9093/api/v2/alerts")
        if a["labels"].get("alertname") == "SlotDown" and a["labels"].get("project") == PROJECT
    ]


def test_targets_up_and_slot_down_alert(bootstrapped: Bootstrapped) -> None:
    info, images = bootstrapped.info, ensure_images()
    codeb(info, "deploy", PROJECT, "--image", images["v1"], "--push")
    codeb(info, "promote", PROJECT)

    jobs = {"node": 4, "postgres": 1, "redis": 1, "caddy": 1, "powerdns": 1, "prometheus": 1, "alertmanager": 1}
    wait_for(
        "every target up", lambda: len(targets(info)) == sum(jobs.values()) and set(targets(info).values()) == {"1"}, 90
    )
    assert {key.split()[0] for key in targets(info)} == set(jobs)
    rules = {r["name"] for g in api(info, "9090/api/v1/rules")["data"]["groups"] for r in g["rules"]}
    assert {"SlotDown", "TargetDown", "WalArchivingFailing", "BackupTooOld", "CertificateExpiring", "DiskFull"} <= rules

    # Exporters listen on the internal (mesh) address only; the app server's metrics answer only the backup server.
    storage = bootstrapped.internal("storage")
    listening = ssh(info, "storage", "ss -Hltn").stdout
    for port in (9100, 9187, 9121):
        assert (
            f"{storage}:{port} " in listening and f"0.0.0.0:{port} " not in listening and f"*:{port} " not in listening
        )
    app = bootstrapped.internal("app")
    assert ssh(info, "app", f"curl -s -o /dev/null -w '%{{http_code}}' http://{app}:9180/metrics").stdout == "403"
    # codeb's own metrics come with the next run of the codeb-metrics timer and the scrape after it.
    slot_up = lambda: [
        r["value"][1] for r in api(info, "9090/api/v1/query", f'codeb_slot_up{{project="{PROJECT}"}}')["data"]["result"]
    ]
    wait_for("codeb_slot_up of the new slot", lambda: slot_up() == ["1"], 90)

    assert ssh(info, "app", f"systemctl stop {PROJECT}-production-blue.service").returncode == 0
    try:
        fired = wait_for(
            "SlotDown firing", lambda: any(a["status"]["state"] == "active" for a in slot_alerts(info)), ALERT_BOUND
        )
    finally:
        assert ssh(info, "app", f"systemctl start {PROJECT}-production-blue.service").returncode == 0
    resolved = wait_for("SlotDown resolved", lambda: not slot_alerts(info), ALERT_BOUND)
    print(f"\nSlotDown fired {fired:.0f}s after the container stopped, resolved {resolved:.0f}s after it started")


def on_backup(command: list[str]) -> tuple[int, str]:
    """A command in the backup server's container, through the engine: works while its sshd is stopped."""
    with connect(echo=lambda _: None) as engine:
        code, output = engine.client.containers.get(container_name("backup")).exec_run(command)
    return code, output.decode(errors="replace")


def archiving_alerts() -> list[dict]:
    code, output = on_backup(["curl", "-sf", "http://127.0.0.1:9093/api/v2/alerts"])
    assert code == 0, output
    return [a for a in json.loads(output) if a["labels"].get("alertname") == "WalArchivingFailing"]


def test_archiving_alert_while_the_backup_server_is_unreachable(bootstrapped: Bootstrapped) -> None:
    info = bootstrapped.info
    new_segment = (
        "cd / && runuser -u postgres -- psql -XAtq -c 'CREATE TABLE IF NOT EXISTS codeb_monitoring_probe (at timestamptz)'"
        " -c 'INSERT INTO codeb_monitoring_probe VALUES (now())' -c 'SELECT pg_switch_wal()'"
    )
    assert not archiving_alerts()
    code, output = on_backup(["systemctl", "stop", "ssh.socket", "ssh.service"])
    try:
        assert ssh(info, "storage", new_segment).returncode == 0
        fired = wait_for(
            "WalArchivingFailing firing",
            lambda: any(a["status"]["state"] == "active" for a in archiving_alerts()),
            ALERT_BOUND,
        )
    finally:
        code, output = on_backup(["systemctl", "start", "ssh.socket", "ssh.service"])
        assert code == 0, output
    assert ssh(info, "storage", new_segment).returncode == 0
    resolved = wait_for("WalArchivingFailing resolved", lambda: not archiving_alerts(), 2 * ALERT_BOUND)
    print(
        f"\nWalArchivingFailing fired {fired:.0f}s after the backup server's sshd stopped, resolved {resolved:.0f}s after it started"
    )
