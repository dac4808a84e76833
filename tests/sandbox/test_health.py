"""`codeb health` on the four sandbox servers: clean after deploys, then every kind of
inconsistency made on purpose at once, each reported with its fix, then clean again."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeb_infra.domain.health import BACKUP_FIXES
from codeb_infra.sandbox import SandboxInfo
from tests.sandbox.conftest import Bootstrapped, start_wireguard
from tests.support.images import ensure_images
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = "/opt/codeb/registry"


def codeb(info: SandboxInfo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeb_infra.cli", *args, "-i", str(info.inventory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


def on(info: SandboxInfo, role: str, command: str) -> str:
    result = ssh(info, role, command)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def findings(info: SandboxInfo) -> tuple[int, dict[str, dict], float]:
    """Exit status and the findings of `codeb health --json` by check, leaving out the backup
    checks (a fresh sandbox has no backups yet; tests/sandbox/test_backups.py covers them)."""
    started = time.monotonic()
    result = codeb(info, "health", "--json")
    seconds = time.monotonic() - started
    report = json.loads(result.stdout)
    assert report["ok"] is (result.returncode == 0), result.stderr
    kept = {
        f["check"]: f
        for f in report["findings"]
        if f["check"] not in BACKUP_FIXES and not f["check"].startswith("dump ")
    }
    return result.returncode, kept, seconds


EDIT_REGISTRY = """
import json, datetime
path = "{registry}/ssot.json"
data = json.load(open(path))
hc = data["projects"]["hc"]["production"]
data["projects"]["ghost"] = {{"staging": {{**hc, "domain": "ghost.example.org", "aliases": []}}}}
json.dump(data, open(path, "w"))
path = "{registry}/slots.json"
data = json.load(open(path))
ended = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
data["slots"]["hc"]["production"]["blue"]["grace_until"] = ended.isoformat()
json.dump(data, open(path, "w"))
"""


def test_health_reports_each_inconsistency_with_its_fix(bootstrapped: Bootstrapped) -> None:
    info, images = bootstrapped.info, ensure_images()
    for project in ("hc", "hcdown"):  # what an interrupted earlier run may have left
        codeb(info, "remove", project, "--force")
    for image in ("v1", "v2"):
        ok(codeb(info, "deploy", "hc", "--image", images[image], "--push"))
        ok(codeb(info, "promote", "hc"))
    ok(codeb(info, "deploy", "hcdown", "--image", images["v1"], "--push"))
    ok(codeb(info, "promote", "hcdown"))
    # The hourly Redis snapshot may have run before the first bootstrap let storage reach the backup server.
    ok(codeb(info, "backup", "now", "redis"))
    status, clean, seconds = findings(info)
    assert clean == {}, clean
    print(f"\ncodeb health of the sandbox: {seconds:.1f}s")

    image = images["v1"]
    on(
        info,
        "app",
        f"cp {REGISTRY}/ssot.json /root/ssot.json.saved && cp {REGISTRY}/slots.json /root/slots.json.saved"
        " && cp /etc/caddy/sites/hcdown-production.caddy /root/hcdown.caddy.saved",
    )
    try:
        on(
            info,
            "app",
            " && ".join(
                [
                    f"podman run -d --name ghost-production-blue --label codeb.project=ghost --label codeb.environment=production"
                    f" --label codeb.slot=blue {image}",
                    "systemctl stop hcdown-production-blue.service",
                    "(podman rm -f hcdown-production-blue || true)",
                    "rm /etc/caddy/sites/hcdown-production.caddy",
                    "echo '# left by hand' > /etc/caddy/sites/stray-production.caddy",
                    'echo \'{"holder": "deploy by a run that died", "since": "2026-01-01T00:00:00+00:00"}\''
                    " > /opt/codeb/locks/hc.staging.lock",
                    f"python3 -c '{EDIT_REGISTRY.format(registry=REGISTRY)}'",
                ]
            ),
        )
        on(info, "streaming", "systemctl stop centrifugo.service")
        on(info, "storage", "systemctl stop wg-quick@wg0.service")
        on(
            info,
            "backup",
            "systemd-run --unit=codeb-health-listener -p RuntimeMaxSec=300 python3 -m http.server 9999"
            " --bind 0.0.0.0 --directory /var/empty",
        )
        hc_ports = json.loads(on(info, "app", f"cat {REGISTRY}/ssot.json"))["projects"]["hc"]["production"]["ports"]

        status, found, _ = findings(info)
        assert status == 1
        wanted = {
            "container ghost-production-blue": (
                "app",
                "has codeb labels but no registry entry",
                "on app: podman rm -f ghost-production-blue",
            ),
            "slot hcdown-production-blue": (
                "app",
                "container is missing",
                "codeb deploy hcdown --env production --image",
            ),
            "pointer hcdown-production.active": (
                "app",
                "where nothing listens",
                "codeb deploy hcdown --env production --image",
            ),
            "active hcdown/production": (
                "app",
                "https://hcdown.codeb.test/health through Caddy: HTTP 502",
                "codeb deploy hcdown",
            ),
            "Caddy site hcdown-production": (
                "app",
                "registry entry without a Caddy site",
                "codeb remove hcdown --env production",
            ),
            "Caddy site ghost-staging": (
                "app",
                "registry entry without a Caddy site",
                "codeb deploy ghost --env staging",
            ),
            "Caddy site stray-production": (
                "app",
                "a site without a registry entry",
                "rm /etc/caddy/sites/stray-production.caddy",
            ),
            **{
                f"port {port}": ("app", "used by ghost/staging and hc/production", "codeb remove hc --env production")
                for port in hc_ports.values()
            },
            "slot hc-production-blue": ("app", "grace period ended", "codeb cleanup hc --env production"),
            "lock hc/staging": ("app", "deploy by a run that died", "--break-lock"),
            "unit centrifugo.service": ("streaming", "centrifugo.service is ", "systemctl restart centrifugo.service"),
            "WireGuard wg0": ("storage", "the mesh interface is down", "on storage: systemctl restart wg-quick@wg0"),
            "public listener tcp/9999": (
                "backup",
                "every address port 9999/tcp",
                "on backup: `ss -lnp 'sport = :9999'`",
            ),
        }
        assert set(found) == set(wanted), json.dumps(found, indent=1)
        for check, (server, problem, fix) in wanted.items():
            assert found[check]["server"] == server, found[check]
            assert problem in found[check]["problem"], found[check]
            assert fix in found[check]["fix"], found[check]
        assert found["lock hc/staging"]["since"].startswith("2026-01-01")
    finally:
        ssh(info, "streaming", "systemctl start centrifugo.service")
        ssh(info, "backup", "systemctl stop codeb-health-listener")
        start_wireguard(bootstrapped, "storage")
        ssh(
            info,
            "app",
            " ; ".join(
                [
                    "podman rm -f ghost-production-blue",
                    "rm -f /etc/caddy/sites/stray-production.caddy /opt/codeb/locks/hc.staging.lock",
                    f"cp /root/ssot.json.saved {REGISTRY}/ssot.json",
                    f"cp /root/slots.json.saved {REGISTRY}/slots.json",
                    "cp /root/hcdown.caddy.saved /etc/caddy/sites/hcdown-production.caddy",
                    "systemctl start hcdown-production-blue.service",
                ]
            ),
        )
    ok(codeb(info, "remove", "hcdown", "--force"))
    ok(codeb(info, "cleanup", "hc", "--force"))
    status, clean, _ = findings(info)
    assert clean == {}, clean
