"""`codeb migrate storage --to storage-target` on the migration sandbox, with a writer on the app
server inserting numbered rows and Redis keys through the project's master env the whole time:
nothing acknowledged is lost, nothing is written twice, the longest gap between acknowledged
writes is printed, and the replication lag at promote is 0 bytes. The preflight of a bad target
exits 1 naming the problem and changes nothing; the controller killed mid-way, a re-run converges."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sandbox.conftest import REPO, Bootstrapped, codeb, must
from tests.support.sandbox_ssh import ssh

pytestmark = [pytest.mark.sandbox, pytest.mark.migration]

PROJECT = "mig"
TARGET = "storage-target"
RATE = 25
WRITER = Path(__file__).resolve().parents[1] / "support" / "migration_writer.py"
OUT = "/root/migration-writer"
MASTER_ENV = f"/opt/codeb/env/{PROJECT}/master.env"
RECORD = "/opt/codeb/migration/storage.json"
APT_PIN = "/etc/apt/preferences.d/codeb-test-no-postgresql"


def psql(m: Bootstrapped, server: str, sql: str) -> str:
    return must(ssh(m.info, server, f'runuser -u postgres -- psql -X -tA -d {PROJECT} -c "{sql}"')).strip()


def untouched(m: Bootstrapped) -> str:
    """What a preflight must leave as it was: the source's pg_hba and settings, the target's packages."""
    source = must(
        ssh(m.info, "storage", "sha256sum /etc/postgresql/15/main/pg_hba.conf; ls /etc/postgresql/15/main/conf.d")
    )
    target = must(
        ssh(m.info, TARGET, f"test -e {RECORD} && echo record; dpkg -l 'postgresql-1*' 2>/dev/null | grep ^ii; true")
    )
    return source + target


@pytest.fixture(scope="module")
def provisioned(migration_sandbox: Bootstrapped) -> Bootstrapped:
    must(codeb(migration_sandbox, "provision", PROJECT))
    psql(
        migration_sandbox,
        "storage",
        "CREATE TABLE IF NOT EXISTS migration_writes (seq int, at timestamptz DEFAULT clock_timestamp())",
    )
    psql(migration_sandbox, "storage", f"ALTER TABLE migration_writes OWNER TO {PROJECT}")
    install = "command -v psql >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null"
    must(ssh(migration_sandbox.info, "app", install, timeout=300))
    return migration_sandbox


def test_a_host_not_marked_as_target_is_refused_before_any_remote_command(provisioned: Bootstrapped) -> None:
    result = codeb(provisioned, "migrate", "storage", "--to", "backup", "--dry-run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "backup: host data must have migrate_target: 'storage'" in result.stderr


def test_preflight_of_a_target_that_cannot_install_postgresql_15_fails_and_changes_nothing(
    provisioned: Bootstrapped,
) -> None:
    before = untouched(provisioned)
    good = codeb(provisioned, "migrate", "storage", "--to", TARGET, "--dry-run")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "[ok] free disk on the target" in good.stdout and "preflight passed" in good.stdout
    # The target's apt refuses every PostgreSQL 15 package: what a target of another release says.
    must(
        ssh(
            provisioned.info,
            TARGET,
            f"printf 'Package: postgresql-15\\nPin: release *\\nPin-Priority: -1\\n' > {APT_PIN}",
        )
    )
    try:
        bad = codeb(provisioned, "migrate", "storage", "--to", TARGET, "--dry-run")
    finally:
        must(ssh(provisioned.info, TARGET, f"rm -f {APT_PIN}"))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "[FAIL] PostgreSQL major version: source runs 15, target installs none" in bad.stdout
    assert "preflight failed: PostgreSQL major version" in bad.stdout
    assert untouched(provisioned) == before


def _start_writer(m: Bootstrapped) -> None:
    must(ssh(m.info, "app", f"rm -rf {OUT}; mkdir -p {OUT}; cat > {OUT}/writer.py", stdin=WRITER.read_text()))
    must(ssh(m.info, "app", f"cd {OUT} && (setsid python3 writer.py {MASTER_ENV} {OUT} {RATE} >{OUT}/err 2>&1 &)"))
    deadline = time.monotonic() + 30
    while _acked(m, "rows.log")[-1:] < [20] or _acked(m, "keys.log")[-1:] < [20]:
        assert time.monotonic() < deadline, must(ssh(m.info, "app", f"cat {OUT}/err"))
        time.sleep(0.5)


def _acked(m: Bootstrapped, log: str) -> list[int]:
    text = must(ssh(m.info, "app", f"cat {OUT}/{log} 2>/dev/null || true"))
    return [int(line.split()[0]) for line in text.splitlines() if line.strip()]


def _acked_times(m: Bootstrapped, log: str) -> list[float]:
    text = must(ssh(m.info, "app", f"cat {OUT}/{log}"))
    return [float(line.split()[1]) for line in text.splitlines() if line.strip()]


def _migrate_killed_at_standby(m: Bootstrapped) -> None:
    """The controller SIGKILLed while the target takes its base backup (after `standby:` shows)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "codeb_infra.cli", "migrate", "storage", "--to", TARGET, "-i", str(m.info.inventory)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("standby:"):
            time.sleep(1.0)
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "".join(seen)


def _moved_inventory(m: Bootstrapped, tmp_path: Path) -> str:
    """The sandbox's inventory as a user edits it after the move: the target is the storage server."""
    path = tmp_path / "moved_inventory.py"
    path.write_text(
        f"exec(open({str(m.info.inventory)!r}).read())\n"
        "storage = [(n, {k: v for k, v in d.items() if k != 'migrate_target'}) for n, d in targets if n == 'storage-target']\n"
        "targets = [t for t in targets if t[0] != 'storage-target']\n"
        "all = ([n for n in all[0] if n != 'storage'], all[1])\n"
    )
    return str(path)


def test_storage_moves_with_nothing_lost(provisioned: Bootstrapped, tmp_path: Path) -> None:
    m = provisioned
    _start_writer(m)
    started = time.monotonic()
    _migrate_killed_at_standby(m)
    assert '"step": 1' in must(ssh(m.info, TARGET, f"cat {RECORD}"))  # prepared, standby not done
    result = codeb(m, "migrate", "storage", "--to", TARGET)
    migration_s = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    time.sleep(2)  # writes keep going to the target
    must(ssh(m.info, "app", f"touch {OUT}/stop; sleep 1"))

    rows, keys = _acked(m, "rows.log"), _acked(m, "keys.log")
    stored = [int(s) for s in psql(m, TARGET, "SELECT seq FROM migration_writes ORDER BY seq").split()]
    stored_keys = must(
        ssh(
            m.info,
            TARGET,
            f'REDISCLI_AUTH="$(cat /etc/codeb/secrets/redis.password)" redis-cli --no-auth-warning --scan --pattern "{PROJECT}:mig:*"',
        )
    ).split()
    rows_lost = len(set(rows) - set(stored))
    keys_lost = len({f"{PROJECT}:mig:{k}" for k in keys} - set(stored_keys))
    duplicates = len(stored) - len(set(stored))
    row_times, key_times = _acked_times(m, "rows.log"), _acked_times(m, "keys.log")
    postgres_gap = max(b - a for a, b in zip(row_times, row_times[1:], strict=False))
    redis_gap = max(b - a for a, b in zip(key_times, key_times[1:], strict=False))
    write_unavailable_s = max(postgres_gap, redis_gap)
    switch = re.search(r"switch: fence to repoint (\S+)s", output)
    lag = re.search(r"lag at promote (\S+) bytes", output)
    print(
        f"\nstorage migration: {migration_s:.1f}s (a kill included), rows acked {len(rows)}, keys acked {len(keys)}, "
        f"rows lost {rows_lost}, keys lost {keys_lost}, duplicates {duplicates}, "
        f"write_unavailable_s {write_unavailable_s:.2f} (PostgreSQL {postgres_gap:.2f}, Redis {redis_gap:.2f}), "
        f"fence to repoint {switch.group(1) if switch else '?'}s, lag at promote {lag.group(1) if lag else '?'} bytes"
    )
    assert len(rows) > 20 and len(keys) > 20
    assert write_unavailable_s < 30
    assert rows_lost == 0 and keys_lost == 0 and duplicates == 0
    assert lag is not None and lag.group(1) == "0"
    # No password in what the controller printed, nor in the target's PostgreSQL settings.
    secrets = must(
        ssh(m.info, "storage", "cat /etc/codeb/secrets/postgres-replication.password /etc/codeb/secrets/redis.password")
    ).split()
    settings = must(
        ssh(m.info, TARGET, "cat /var/lib/postgresql/15/main/postgresql.auto.conf /etc/postgresql/15/main/conf.d/*")
    )
    assert len(secrets) == 2 and all(len(s) >= 20 for s in secrets)
    for secret in secrets:
        assert secret not in output and secret not in settings
    # The app server's master env names the target for PostgreSQL and Redis.
    assert must(ssh(m.info, "app", f"grep -c @10.77.0.5: {MASTER_ENV}")).strip() == "2"
    # The source is fenced: PostgreSQL refuses writes, Redis follows the target.
    refused = ssh(
        m.info, "storage", f"runuser -u postgres -- psql -X -d {PROJECT} -c 'INSERT INTO migration_writes VALUES (0)'"
    )
    assert refused.returncode != 0 and "read-only transaction" in refused.stderr
    role = must(
        ssh(
            m.info,
            "storage",
            'REDISCLI_AUTH="$(cat /etc/codeb/secrets/redis.password)" redis-cli --no-auth-warning ROLE',
        )
    )
    assert role.split()[0] == "slave"
    # With the inventory naming the target as storage, backups come from it and a drill passes.
    moved = _moved_inventory(m, tmp_path)
    must(codeb(m, "backup", "now", inventory=moved))
    drill = codeb(m, "backup", "verify", inventory=moved)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    restored = re.search(r"'public.migration_writes': (\d+)", drill.stdout)
    assert restored is not None and int(restored.group(1)) >= len(rows), drill.stdout
    # A second run changes nothing and says it is done.
    again = codeb(m, "migrate", "storage", "--to", TARGET)
    assert again.returncode == 0 and "done: storage runs on storage-target" in again.stdout
    assert "standby:" not in again.stdout and "repoint:" not in again.stdout
