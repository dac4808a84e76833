"""Certificates through ACME on the sandbox's app server: a second Caddy there acts as a local ACME
CA that resolves names through the app server's own PowerDNS; the app server's Caddy, bootstrapped
with tls=acme and that CA's directory, gets its project certificates from it. Afterwards the app
server is bootstrapped again with the sandbox's own settings (tls internal), as other tests expect."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codeb_infra.config.app import HostSettings
from codeb_infra.controller import probe
from codeb_infra.sandbox import SandboxInfo
from tests.sandbox.conftest import Bootstrapped, must
from tests.sandbox.test_e2e import codeb, ok, run
from tests.support.images import ensure_images
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

PROJECT = f"certs-{uuid.uuid4().hex[:6]}"
"""A fresh project each run: its very first deploy is the one that must get the certificate."""
DOMAIN = f"{PROJECT}.codeb.test"
CA_PORT = 9443
CA_UNIT = "codeb-test-ca"
CA_STORAGE = "/var/lib/codeb-test-ca"
CA_ETC = "/etc/codeb-test-ca"
CA_ROOT = f"{CA_ETC}/root.crt"
"""Where the app server's Caddy (user caddy) reads the test CA's root: outside the CA's storage."""
CA_NAME = "codeb test ACME CA"
APP_CADDY_DATA = "/var/lib/caddy/.local/share/caddy"
ISSUANCE_SECONDS = 120
FIRST_ORDER_SECONDS = 50
"""A first order that failed is retried by Caddy only after a minute; served sooner means the first
order (at the first deploy) succeeded."""


def ca_caddyfile(address: str) -> str:
    """The test CA: Caddy's `acme_server` on the app server's private address, its certificate
    from its own internal PKI, names resolved by the app server's PowerDNS."""
    return f"""{{
	admin off
	storage file_system {CA_STORAGE}
	skip_install_trust
	auto_https disable_redirects
	pki {{
		ca local {{
			name "{CA_NAME}"
		}}
	}}
}}

https://{address}:{CA_PORT} {{
	bind {address}
	tls internal
	acme_server {{
		resolvers {address}:53
	}}
}}
"""


@dataclass
class AcmeApp:
    info: SandboxInfo
    data: dict[str, str]
    root: Path
    """The test CA's root, copied to this machine."""
    caddy_root: Path
    """The app server's own internal CA root (what `tls internal` sites chain to)."""
    first: subprocess.CompletedProcess[str]


def bootstrap_app(info: SandboxInfo, data: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = [p for k, v in data.items() for p in ("--data", f"{k}={v}")]
    return run(
        sys.executable, "-m", "pyinfra", "-y", str(info.inventory), "deploys/bootstrap.py", "--limit", "app", *args
    )


def forget_test_ca(info: SandboxInfo, address: str) -> None:
    """Stop the CA and remove its files, and what the app's Caddy keeps of it (account, certificates):
    a later run's CA has new keys, so those certificates would no longer verify."""
    issuer = f"{address}-{CA_PORT}-acme-local-directory"
    ssh(
        info,
        "app",
        f"systemctl stop {CA_UNIT}; systemctl reset-failed {CA_UNIT}; "
        f"rm -rf {CA_STORAGE} {CA_ETC} {APP_CADDY_DATA}/certificates/{issuer} {APP_CADDY_DATA}/acme/{issuer}",
    )


def start_test_ca(info: SandboxInfo, address: str) -> str:
    """Start the CA as a transient unit; its root once its directory answers over HTTPS.

    Caddy's `resolvers` serve only dns-01's TXT lookups; http-01 and tls-alpn-01 resolve through
    the system's resolver. So the unit also sees a resolv.conf of its own naming our PowerDNS."""
    must(ssh(info, "app", f"mkdir -p {CA_ETC} && cat > {CA_ETC}/Caddyfile", stdin=ca_caddyfile(address)))
    must(ssh(info, "app", f"cat > {CA_ETC}/resolv.conf", stdin=f"nameserver {address}\n"))
    caddy = HostSettings().caddy_bin
    must(
        ssh(
            info,
            "app",
            f"systemd-run --unit={CA_UNIT} --property=BindReadOnlyPaths={CA_ETC}/resolv.conf:/etc/resolv.conf "
            f"--setenv=XDG_CONFIG_HOME={CA_STORAGE}/config --setenv=XDG_DATA_HOME={CA_STORAGE}/data "
            f"{caddy} run --adapter caddyfile --config {CA_ETC}/Caddyfile",
        )
    )
    root = f"{CA_STORAGE}/pki/authorities/local/root.crt"
    check = f"curl -sf --cacert {root} https://{address}:{CA_PORT}/acme/local/directory"
    deadline = time.monotonic() + 60
    while ssh(info, "app", check).returncode != 0:
        assert time.monotonic() < deadline, ssh(info, "app", f"journalctl -u {CA_UNIT} --no-pager | tail -30").stdout
        time.sleep(1)
    must(ssh(info, "app", f"install -m 644 {root} {CA_ROOT}"))
    return must(ssh(info, "app", f"cat {CA_ROOT}"))


def app_internal_root(info: SandboxInfo) -> str:
    """The app Caddy's own internal root, through its admin API: that makes the CA (and its file
    at probe.CADDY_LOCAL_ROOT) when no `tls internal` site has needed it yet."""
    shown = json.loads(must(ssh(info, "app", "curl -sf http://localhost:2019/pki/ca/local")))
    assert must(ssh(info, "app", f"cat {probe.CADDY_LOCAL_ROOT}")).strip() == shown["root_certificate"].strip()
    return shown["root_certificate"]


@pytest.fixture(scope="module")
def acme_app(bootstrapped: Bootstrapped, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeApp]:
    info = bootstrapped.info
    address = bootstrapped.address("app")
    data = {
        "tls": "acme",
        "acme_ca": f"https://{address}:{CA_PORT}/acme/local/directory",
        "acme_ca_root": CA_ROOT,
        "acme_email": "ops@codeb.test",
    }
    local = tmp_path_factory.mktemp("acme")
    forget_test_ca(info, address)  # what a run that died may have left
    try:
        (local / "test-ca.crt").write_text(start_test_ca(info, address))
        (local / "caddy-local.crt").write_text(app_internal_root(info))
        first = bootstrap_app(info, data)
        ok(first)
        yield AcmeApp(info, data, local / "test-ca.crt", local / "caddy-local.crt", first)
    finally:
        data_args = [p for k, v in data.items() for p in ("--data", f"{k}={v}")]
        removed = codeb(info, "remove", PROJECT, "--force", *data_args)
        restored = bootstrap_app(info, {})
        forget_test_ca(info, address)
        ok(removed)
        ok(restored)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=30, check=False
    )


def https(app: AcmeApp, root: Path) -> subprocess.CompletedProcess[str]:
    port = app.info.servers["app"].https_port
    return curl("--resolve", f"{DOMAIN}:{port}:127.0.0.1", "--cacert", str(root), f"https://{DOMAIN}:{port}/")


def leaf_issuer(app: AcmeApp) -> str:
    port = app.info.servers["app"].https_port
    shown = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", DOMAIN],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout
    return must(
        subprocess.run(
            ["openssl", "x509", "-noout", "-issuer"],
            input=shown,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    ).strip()


def test_app_gets_its_certificates_from_the_configured_acme_ca(acme_app: AcmeApp) -> None:
    info, data = acme_app.info, acme_app.data
    caddyfile = must(ssh(info, "app", "cat /etc/caddy/Caddyfile"))
    assert f"acme_ca {data['acme_ca']}" in caddyfile and f"acme_ca_root {CA_ROOT}" in caddyfile
    assert "email ops@codeb.test" in caddyfile
    image, data_args = ensure_images()["v1"], [p for k, v in data.items() for p in ("--data", f"{k}={v}")]
    # The project's very first deploy, with ACME on: it writes the DNS records before the Caddy
    # site, so the CA finds the name when Caddy orders (at once, when the site appears).
    since = must(ssh(info, "app", "date -u '+%Y-%m-%d %H:%M:%S'")).strip()
    deployed = time.monotonic()
    ok(codeb(info, "deploy", PROJECT, "--image", image, "--push", *data_args))
    ok(codeb(info, "promote", PROJECT, *data_args))
    assert "tls internal" not in must(ssh(info, "app", f"cat /etc/caddy/sites/{PROJECT}-production.caddy"))

    served = https(acme_app, acme_app.root)
    while served.stdout.strip() != "v1" and time.monotonic() - deployed < ISSUANCE_SECONDS:
        time.sleep(2)
        served = https(acme_app, acme_app.root)
    seconds = time.monotonic() - deployed
    print(f"\ncertificate for {DOMAIN} from the test ACME CA served {seconds:.1f}s after its first deploy began")
    log = ssh(info, "app", f"journalctl -u caddy --since '{since}' --no-pager -o cat | grep -F '{DOMAIN}'").stdout
    assert served.stdout.strip() == "v1", (served.stderr, log[-3000:])
    failed_orders = [line for line in log.splitlines() if '"level":"error"' in line]
    assert failed_orders == [], "the first order failed (DNS not there yet?):\n" + "\n".join(failed_orders[:5])
    assert seconds < FIRST_ORDER_SECONDS, f"issued after {seconds:.0f}s: only Caddy's retry got it"

    # The chain verifies against the test CA's root only, not against the app server's own
    # internal CA (also a Caddy's, so the root each verifies with tells them apart).
    refused = https(acme_app, acme_app.caddy_root)
    assert refused.returncode == 60 and "certificate" in refused.stderr, (refused.returncode, refused.stderr)
    assert CA_NAME in leaf_issuer(acme_app)

    http_port = info.servers["app"].http_port
    redirect = curl(
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--resolve",
        f"{DOMAIN}:{http_port}:127.0.0.1",
        f"http://{DOMAIN}:{http_port}/",
    )
    assert redirect.stdout == f"308 https://{DOMAIN}/", redirect


def changed_operations(output: str) -> list[str]:
    """Names of the operations that ran commands, from a pyinfra run's output
    ("--> Starting operation: Deploy | Name", then "    [app]       Success" or "No changes")."""
    current, changed = "", []
    for line in output.splitlines():
        if line.startswith("--> Starting operation:"):
            current = line.split("|")[-1].strip()
        elif re.fullmatch(r"\s*\[[\w@.-]+\]\s+Success\s*", line):
            changed.append(current)
    return changed


def test_a_second_acme_bootstrap_changes_nothing(acme_app: AcmeApp) -> None:
    # The first one (in the fixture) wrote the Caddyfile and reloaded Caddy; what else follows the
    # TLS mode may change with it (the API's site and inventory, the metrics' probe), nothing more.
    first = changed_operations(acme_app.first.stdout)
    assert {"Main Caddyfile", "Caddy running and enabled"} <= set(first), first
    follows_tls = {
        "Caddy site api.codeb.test",
        "codeb API inventory",
        "codeb-api running and enabled",
        "codeb-metrics service",
        "codeb-metrics timer running",
    }
    assert set(first) <= {"Main Caddyfile", "Caddy running and enabled", *follows_tls}, first
    again = ok(bootstrap_app(acme_app.info, acme_app.data))
    assert "Main Caddyfile" in again and changed_operations(again) == [], again[-3000:]


def test_bad_acme_data_fails_before_any_remote_command(acme_app: AcmeApp) -> None:
    refused = bootstrap_app(acme_app.info, {**acme_app.data, "acme_ca": "http://insecure.example/directory"})
    assert refused.returncode != 0
    assert "invalid host data: acme_ca:" in refused.stdout
    assert "Starting operation" not in refused.stdout
