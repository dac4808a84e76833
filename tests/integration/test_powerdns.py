"""PowerDNS for real: a pdns_server on loopback, zones and records applied by `pyinfra @local` through
codeb's operations, answers checked with dig (not with the facts under test)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.needs(
        bool(shutil.which("pdns_server") and shutil.which("dig")),
        "pdns-server, pdns-backend-sqlite3 and dnsutils (scripts/setup.sh installs them)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = Path(__file__).with_name("powerdns_deploy.py")


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


@dataclass
class Run:
    case: str
    returncode: int
    output: str
    seconds: float

    @property
    def totals(self) -> dict[str, int]:
        """The Grand total row of pyinfra's results table: ops, changed (Success), errors, no change."""
        row = re.search(r"Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", self.output)
        assert row, self.output[-3000:]
        ops, changed, errors, unchanged = (0 if v == "-" else int(v) for v in row.groups())
        return {"ops": ops, "changed": changed, "errors": errors, "unchanged": unchanged}


@dataclass
class PowerDns:
    base: Path
    dns_port: int
    api_port: int
    runs: list[Run] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def key_file(self) -> Path:
        return self.base / "secrets" / "pdns-api.key"

    def data(self, **overrides: str) -> list[str]:
        values = {
            "codeb_dir": str(self.base / "codeb"),
            "base_domain": "codeb.test",
            "dns_zones": "codeb.test",
            "dns_listen": "127.0.0.1",
            "dns_port": str(self.dns_port),
            "pdns_api_port": str(self.api_port),
            "pdns_key_file": str(self.key_file),
            "public_address": "192.0.2.10",
            "public_address6": "2001:db8::10",
            "pdns_dir": str(self.base),
            **overrides,
        }
        return [arg for key, value in values.items() for arg in ("--data", f"{key}={value}")]

    def apply(self, case: str, **overrides: str) -> Run:
        started = time.monotonic()
        done = subprocess.run(
            # pyinfra's default mode: detect changes (every operation checks its input) before executing.
            [sys.executable, "-m", "pyinfra", "-vvv", "@local", str(DEPLOY), *self.data(pdns_case=case, **overrides)],
            cwd=ROOT,
            input="\n",
            capture_output=True,
            text=True,
            timeout=300,
        )
        run = Run(case, done.returncode, done.stdout + done.stderr, time.monotonic() - started)
        self.runs.append(run)
        if self.key_file.exists():
            assert self.key_file.read_text().strip() not in run.output, f"the API key leaked into the output of {case}"
        return run

    def dig(self, name: str, rtype: str) -> list[str]:
        out = subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(self.dns_port), "+short", "+norecurse", "+time=2", "+tries=2", name, rtype],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return sorted(line for line in out.splitlines() if line)

    def serial(self) -> int:
        (soa,) = self.dig("codeb.test", "SOA")
        return int(soa.split()[2])

    def api(self, method: str, path: str, body: dict | None = None) -> int:
        """The API used directly, as a person would by hand (independent of codeb's tool)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}/api/v1/servers/localhost{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"X-API-Key": self.key_file.read_text().strip()},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    def start(self) -> None:
        (self.base / "pdns.conf").write_text(f"include-dir={self.base}/pdns.d\nsocket-dir={self.base}\n")
        with open(self.base / "pdns.log", "wb") as log:
            self.process = subprocess.Popen(
                ["pdns_server", "--daemon=no", "--guardian=no", f"--config-dir={self.base}"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.api("GET", "/zones")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "pdns_server did not start:\n" + (self.base / "pdns.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def pdns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PowerDns]:
    server = PowerDns(base=tmp_path_factory.mktemp("pdns"), dns_port=free_port(), api_port=free_port())
    setup = server.apply("setup")
    assert setup.returncode == 0, setup.output[-4000:]
    again = server.apply("setup")
    assert again.returncode == 0 and again.totals["changed"] == 0, again.output[-4000:]
    server.start()
    try:
        yield server
    finally:
        server.stop()
        timings = ", ".join(f"{r.case} {r.seconds:.1f}s" for r in server.runs)
        print(f"\npyinfra runs: {timings}")


@pytest.fixture(scope="module")
def applied(pdns: PowerDns) -> PowerDns:
    first = pdns.apply("records")
    assert first.returncode == 0, first.output[-4000:]
    assert first.totals["changed"] == first.totals["ops"] == 8, first.output[-4000:]
    return pdns


def test_setup_keeps_the_key_private_and_pdns_only_gets_its_hash(pdns: PowerDns):
    key = pdns.key_file.read_text().strip()
    assert oct(pdns.key_file.stat().st_mode & 0o777) == "0o600"
    hashed = (pdns.base / "pdns.d" / "codeb-api.conf").read_text()
    assert "api-key=$scrypt$" in hashed and key not in hashed
    assert "api=yes" in (pdns.base / "pdns.d" / "codeb.conf").read_text()
    assert pdns.api("GET", "/zones") == 200, "pdns accepts the key whose hash codeb-pdns wrote"


def test_records_answer_and_a_second_run_changes_nothing(applied: PowerDns):
    pdns = applied
    assert pdns.dig("myapp.codeb.test", "A") == ["192.0.2.10"]
    assert pdns.dig("myapp.codeb.test", "AAAA") == ["2001:db8::10"]
    assert pdns.dig("myapp-preview.codeb.test", "A") == ["192.0.2.10"]
    assert pdns.dig("ns1.codeb.test", "A") == ["192.0.2.10"]
    assert pdns.dig("codeb.test", "NS") == ["ns1.codeb.test."]
    assert pdns.dig("www.codeb.test", "CNAME") == ["myapp.codeb.test."]
    assert pdns.dig("codeb.test", "MX") == ["10 mail.codeb.test.", "20 mail2.codeb.test."]
    assert pdns.dig("codeb.test", "TXT") == ['"v=spf1 -all"']
    long_txt = pdns.dig("_long.codeb.test", "TXT")[0]
    assert long_txt == '"k=' + "0123456789" * 25 + '012" "' + "3456789" + "0123456789" * 4 + ' \\"quoted\\" \\\\ end"'
    soa = pdns.dig("codeb.test", "SOA")[0].split()
    assert soa[:2] == ["ns1.codeb.test.", "hostmaster.codeb.test."] and soa[3:] == ["10800", "3600", "604800", "3600"]

    serial = pdns.serial()
    second = pdns.apply("records")
    assert second.returncode == 0, second.output[-4000:]
    assert second.totals == {"ops": 8, "changed": 0, "errors": 0, "unchanged": 8}
    assert pdns.serial() == serial


def test_a_hand_added_rrset_survives_and_is_not_taken_over(applied: PowerDns):
    pdns = applied
    assert (
        pdns.api(
            "PATCH",
            "/zones/codeb.test.",
            {
                "rrsets": [
                    {
                        "name": "hand.codeb.test.",
                        "type": "A",
                        "ttl": 120,
                        "changetype": "REPLACE",
                        "records": [{"content": "192.0.2.99", "disabled": False}],
                    }
                ]
            },
        )
        == 204
    )
    serial = pdns.serial()
    again = pdns.apply("records")
    assert again.returncode == 0 and again.totals["changed"] == 0
    refused = pdns.apply("bad-hand")
    assert (
        refused.returncode != 0 and "hand.codeb.test. A already exists and was not created by codeb" in refused.output
    )
    assert pdns.dig("hand.codeb.test", "A") == ["192.0.2.99"] and pdns.serial() == serial


@pytest.mark.parametrize(
    "case,message",
    [
        ("bad-outside", "record myapp.other.test. is outside any zone codeb manages (zones: codeb.test.)"),
        (
            "bad-cname",
            "myapp.codeb.test. CNAME: the name already holds A, AAAA data and a CNAME cannot sit beside other data",
        ),
        ("bad-ttl", "invalid TTL 30: use whole seconds from 60 to 604800"),
        ("bad-name", "invalid record name 'my app.codeb.test'"),
    ],
)
def test_bad_input_fails_with_one_clear_line_and_changes_nothing(applied: PowerDns, case: str, message: str):
    pdns = applied
    serial = pdns.serial()
    run = pdns.apply(case)
    assert run.returncode != 0
    assert message in run.output and "(nothing was changed)" in run.output, run.output[-3000:]
    assert "Traceback" not in run.output
    assert pdns.serial() == serial
    assert pdns.dig("before-the-bad-one.codeb.test", "A") == [], "no operation of the failed run ran"


def test_removal_deletes_only_what_it_names(applied: PowerDns):
    pdns = applied
    removed = pdns.apply("remove")
    assert removed.returncode == 0 and removed.totals["changed"] == 3, removed.output[-4000:]
    assert pdns.dig("myapp-preview.codeb.test", "A") == [] and pdns.dig("myapp-staging.codeb.test", "A") == []
    assert pdns.dig("myapp.codeb.test", "A") == ["192.0.2.10"]
    serial = pdns.serial()
    again = pdns.apply("remove")
    assert again.returncode == 0 and again.totals["changed"] == 0 and pdns.serial() == serial
    restored = pdns.apply("records")
    assert restored.returncode == 0 and restored.totals["changed"] == 2
    assert pdns.dig("myapp-preview.codeb.test", "AAAA") == ["2001:db8::10"]


def test_api_down_or_wrong_key_is_one_clear_line(applied: PowerDns, tmp_path: Path):
    pdns = applied
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not-the-key\n")
    refused = pdns.apply("records", pdns_key_file=str(wrong))
    assert refused.returncode != 0 and "refused the key in" in refused.output and "not-the-key" not in refused.output
    down = pdns.apply("records", pdns_api_port=str(free_port()))
    assert down.returncode != 0 and "is not answering" in down.output and "is pdns running" in down.output


def test_the_key_appears_in_no_pyinfra_output(applied: PowerDns):
    key = applied.key_file.read_text().strip()
    assert len(applied.runs) >= 4 and all(key not in run.output for run in applied.runs)
    assert any("--key-file" in run.output for run in applied.runs), (
        "-vvv shows the commands, so the check means something"
    )
