"""codeb-pdns's key handling, run as a real program on temp files (its HTTP side runs against a real
PowerDNS in tests/integration/test_powerdns.py)."""

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

from codeb_infra.remote import codeb_pdns

TOOL = [sys.executable, str(Path(codeb_pdns.__file__))]


def run(tmp_path, *args, key_file=None):
    key = key_file or str(tmp_path / "secrets" / "pdns-api.key")
    return subprocess.run([*TOOL, "--key-file", key, *args], capture_output=True, text=True, timeout=30)


def test_key_is_made_once_private_and_only_its_hash_goes_into_the_config(tmp_path):
    conf = tmp_path / "pdns.d" / "codeb-api.conf"
    group = Path("/etc/group").read_text().split(":", 1)[0]
    key_args = ["api-key", "--conf", str(conf), "--group", group]
    assert run(tmp_path, *key_args, "--check").stdout.strip() == "missing"
    assert run(tmp_path, *key_args).stdout.strip() == "written"
    key_file = tmp_path / "secrets" / "pdns-api.key"
    key = key_file.read_text().strip()
    assert len(key) >= 40
    assert (
        stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    )
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    line = conf.read_text().splitlines()[-1]
    assert line.startswith("api-key=$scrypt$ln=10,p=1,r=8$") and key not in conf.read_text()
    assert codeb_pdns._matches(key, line.split("=", 1)[1]) and not codeb_pdns._matches(key + "x", line.split("=", 1)[1])
    assert run(tmp_path, *key_args, "--check").stdout.strip() == "ok"
    assert run(tmp_path, *key_args).stdout.strip() == "unchanged"
    assert key_file.read_text().strip() == key, "the key is generated once"

    conf.write_text(
        "api-key=$scrypt$ln=10,p=1,r=8$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    )
    assert run(tmp_path, *key_args, "--check").stdout.strip() == "mismatch"
    os.chmod(key_file, 0o644)
    assert run(tmp_path, *key_args, "--check").stdout.strip() == "exposed"
    assert run(tmp_path, *key_args).stdout.strip() == "written"
    assert run(tmp_path, *key_args, "--check").stdout.strip() == "ok" and key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_reads_before_the_bootstrap_see_no_zones_and_api_errors_say_what_to_do(tmp_path):
    assert run(tmp_path, "zone", "--zone", "codeb.kr.", "--unconfigured-ok").stdout.strip() == "null"
    assert run(tmp_path, "zones", "--unconfigured-ok").stdout.strip() == "[]"
    missing = run(tmp_path, "zones")
    assert (
        missing.returncode == codeb_pdns.EXIT_UNAUTHORIZED and "cannot read the PowerDNS API key file" in missing.stderr
    )

    key_file = tmp_path / "key"
    key_file.write_text("k" * 40)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    down = run(tmp_path, "--url", f"http://127.0.0.1:{port}", "zones", key_file=str(key_file))
    assert down.returncode == codeb_pdns.EXIT_UNREACHABLE
    assert f"PowerDNS API at http://127.0.0.1:{port} is not answering" in down.stderr and "k" * 40 not in down.stderr
