"""`codeb migrate app --to app-target` on the migration sandbox: four clients that resolve the
domain through our PowerDNS before every request run during the whole move (and a SIGKILL of the
controller midway, then a re-run): none fails, the domain serves the same release before and
after, DNS names the target, a client with a stale answer still gets it from the source, the
target promotes and rolls back, and --abort brings the source back. A dry-run of an unreachable
target exits 1 naming it and changes nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeb_infra.sandbox.demo_app import build_test_image
from tests.sandbox.conftest import REPO, Bootstrapped, codeb, ok, on
from tests.support.resolving_load import ResolvingLoad, fetch, resolve_a

pytestmark = [pytest.mark.sandbox, pytest.mark.migration]

PROJECT = "moving"
DOMAIN = f"{PROJECT}.codeb.test"
TARGET = "app-target"
KILL_AT = "step slots"  # the controller is SIGKILLed when it starts this step


def _observed(b: Bootstrapped) -> dict[str, str]:
    """What a migration changes: the source's pointers and zone, the target's step record."""
    return {
        "pointers": on(b, "app", "head -v /etc/caddy/upstreams/* 2>/dev/null || true"),
        "zone": on(b, "app", "pdnsutil list-zone codeb.test 2>/dev/null | grep -v SOA | sort"),
        "record": on(b, TARGET, "cat /opt/codeb/migration/app.json 2>/dev/null || echo none"),
        "target sites": on(b, TARGET, "ls /etc/caddy/sites/ 2>/dev/null || true"),
    }


def _inventory_with(b: Bootstrapped, path: Path, **replace: str) -> Path:
    text = b.info.inventory.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return path


def _target_as_app(b: Bootstrapped, path: Path) -> Path:
    """The inventory after the move: app-target is the app server, the old one has left."""
    text = b.info.inventory.read_text()
    found = re.search(r"\('app-target', \{[^}]*\}\)", text)
    assert found, text
    lines = [line for line in text.splitlines() if not line.startswith(("app = ", "targets = "))]
    lines = [
        line.replace("'app', ", "", 1).replace("'storage-target', ", "") if line.startswith("all = ") else line
        for line in lines
    ]
    entry = found.group(0).replace("'migrate_target': 'app', ", "")
    path.write_text("\n".join([*lines, f"app = [{entry}]"]) + "\n")
    return path


def test_a_dry_run_of_an_unreachable_target_exits_1_and_changes_nothing(
    migration_sandbox: Bootstrapped, tmp_path: Path
) -> None:
    b = migration_sandbox
    port = b.info.servers[TARGET].ssh_port
    bad = _inventory_with(b, tmp_path / "bad.py", **{f"'ssh_port': {port}": "'ssh_port': 1"})
    before = _observed(b)
    result = codeb(b, "migrate", "app", "--to", TARGET, "--dry-run", inventory=bad)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"\[FAIL\] target reachable: cannot reach app-target", result.stdout), result.stdout
    wrong = codeb(b, "migrate", "app", "--to", "storage", "--dry-run")
    assert wrong.returncode == 2 and "migrate_target" in wrong.stderr, wrong.stdout + wrong.stderr
    assert _observed(b) == before


def test_the_app_server_moves_with_no_failed_request(migration_sandbox: Bootstrapped, tmp_path: Path) -> None:
    b = migration_sandbox
    inventory = b.info.inventory
    source_ip, target_ip = b.address("app"), b.address(TARGET)
    v1, v2 = build_test_image("v1", "v1"), build_test_image("v2", "v2")
    for image in (v1, v2):
        ok(codeb(b, "deploy", PROJECT, "--image", image, "--push"))
        ok(codeb(b, "promote", PROJECT))
    assert fetch(DOMAIN, resolve_a(DOMAIN, source_ip)) == (200, "v2")

    dry = codeb(b, "migrate", "app", "--to", TARGET, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"[ok] DNS TTL: {DOMAIN}. A TTL" in dry.stdout and "codeb-pdns" in dry.stdout
    assert "outside: at the registrar of codeb.test: NS ns1.codeb.test" in dry.stdout
    print("\n" + dry.stdout)

    started = time.monotonic()
    with ResolvingLoad(DOMAIN, source_ip, clients=4, max_seconds=600) as load:
        time.sleep(1.0)
        # SIGKILL the controller as it starts one step, then run it again: it continues.
        killed = subprocess.Popen(
            [sys.executable, "-m", "codeb_infra.cli", "migrate", "app", "--to", TARGET, "-i", str(inventory)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert killed.stdout is not None
        seen = []
        for line in killed.stdout:
            seen.append(line)
            if line.strip() == KILL_AT:
                killed.send_signal(signal.SIGKILL)
                break
        killed.wait(60)
        assert killed.returncode == -signal.SIGKILL, "".join(seen)
        record = on(b, TARGET, "cat /opt/codeb/migration/app.json")
        assert '"images"' in record and '"slots"' not in record, record
        moved = codeb(b, "migrate", "app", "--to", TARGET)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "step bootstrap" not in moved.stdout and "step state" not in moved.stdout, moved.stdout
        time.sleep(2.0)
    seconds = time.monotonic() - started
    samples = load.samples
    failed = [s for s in samples if not s.ok]
    by_address = {address: [s for s in samples if s.address == address] for address in (source_ip, target_ip)}
    print(
        f"\nmigrate app: {len(samples)} requests by 4 resolving clients in {seconds:.0f}s, {len(failed)} failed;"
        f" {len(by_address[source_ip])} answered via the source, {len(by_address[target_ip])} via the target\n"
        + moved.stdout
    )
    assert failed == [], failed[:5]
    assert by_address[source_ip] and by_address[target_ip], "the clients never moved: the test proves nothing"
    assert {s.body for s in samples} == {"v2"}, "the domain served another release during the move"
    assert samples[-1].address == target_ip
    assert resolve_a(DOMAIN, source_ip) == target_ip == resolve_a(f"{PROJECT}-preview.codeb.test", source_ip)
    assert re.search(r"requests still arriving at the source since the DNS switch: \d+", moved.stdout)

    # A resolver holding the old answer still gets answers, from the target through the source.
    assert fetch(DOMAIN, source_ip) == (200, "v2")
    assert fetch(DOMAIN, target_ip) == (200, "v2")
    root = on(b, TARGET, "cat /var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt")
    assert "BEGIN CERTIFICATE" in root
    # A re-run converges and changes nothing.
    after = _observed(b)
    again = codeb(b, "migrate", "app", "--to", TARGET)
    assert again.returncode == 0 and "step " not in again.stdout, again.stdout + again.stderr
    assert _observed(b) == after

    # On the new app server (the inventory after the move): rollback and promote work, and the
    # source, still relaying, follows.
    moved_inventory = _target_as_app(b, tmp_path / "moved.py")
    ok(codeb(b, "rollback", PROJECT, inventory=moved_inventory))
    assert fetch(DOMAIN, target_ip) == (200, "v1") and fetch(DOMAIN, source_ip) == (200, "v1")
    ok(codeb(b, "deploy", PROJECT, "--image", build_test_image("v4", "v4"), "--push", inventory=moved_inventory))
    ok(codeb(b, "promote", PROJECT, inventory=moved_inventory))
    assert fetch(DOMAIN, target_ip) == (200, "v4") and fetch(DOMAIN, source_ip) == (200, "v4")

    # --abort within grace: DNS names the source again and it serves from its own slots.
    aborted = codeb(b, "migrate", "app", "--to", TARGET, "--abort")
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert resolve_a(DOMAIN, source_ip) == source_ip
    assert on(b, "app", f"cat /etc/caddy/upstreams/{PROJECT}-production.active").startswith("127.0.0.1:")
    assert fetch(DOMAIN, source_ip) == (200, "v2")
