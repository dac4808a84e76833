"""Per-project data on the sandbox's storage server: each project's database, role and Redis user,
its master env on the app server and in its slot, and one project locked out of another's data."""

from __future__ import annotations

import hashlib

import pytest

from codeb_infra.domain.data import PROTECTED_VARIABLES
from codeb_infra.sandbox import SandboxInfo
from tests.sandbox.conftest import Bootstrapped, internal_address
from tests.sandbox.data_support import (
    must,
    redis_admin,
    redis_as_project,
    sql,
    sql_as_project,
)
from tests.sandbox.test_e2e import changed_ops, codeb, ok, pyinfra
from tests.support.images import ensure_images
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

PROTECTED = PROTECTED_VARIABLES


@pytest.fixture(scope="module")
def provisioned(bootstrapped: Bootstrapped) -> SandboxInfo:
    info = bootstrapped.info
    ok(codeb(info, "provision", "ledger"))
    ok(pyinfra(info, "provision", project="notes"))
    return info


def _values(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _digests(text: str) -> dict[str, str]:
    return {k: hashlib.sha256(v.encode()).hexdigest() for k, v in _values(text).items()}


def test_provisioning_twice_changes_nothing(provisioned: SandboxInfo) -> None:
    assert ok(codeb(provisioned, "provision", "ledger")).strip().endswith("no change")
    again = ok(pyinfra(provisioned, "provision", project="notes"))
    assert changed_ops(again) == [], again[-3000:]


def test_bad_project_names_are_refused_before_any_command(provisioned: SandboxInfo) -> None:
    for bad in ("Ledger", "a;b", "postgres"):
        result = codeb(provisioned, "provision", bad)
        assert result.returncode == 2 and "nothing was changed" in result.stdout
    assert "a;b" not in sql(provisioned, "postgres", "SELECT string_agg(datname, ',') FROM pg_database")


def test_master_env_on_the_app_server_is_root_only_and_holds_the_protected_variables(provisioned: SandboxInfo) -> None:
    info = provisioned
    app = ssh(
        info, "app", "stat -c '%U %G %a' /opt/codeb/env/ledger/master.env; sha256sum < /opt/codeb/env/ledger/master.env"
    ).stdout.split("\n")
    storage = ssh(info, "storage", "sha256sum < /etc/codeb/secrets/projects/ledger.env").stdout
    assert app[0] == "root root 600" and app[1] == storage.strip()
    keys = ssh(info, "app", "cut -d= -f1 /opt/codeb/env/ledger/master.env").stdout.split()
    assert set(PROTECTED) <= set(keys)
    url = ssh(
        info,
        "app",
        "sed -n 's/^DATABASE_URL=postgresql:\\/\\/\\([^:]*\\):.*@\\(.*\\)$/\\1 \\2/p' /opt/codeb/env/ledger/master.env",
    ).stdout.split()
    assert url == ["ledger", f"{internal_address(info, 'storage')}:5432/ledger"]


def test_each_project_reaches_its_own_database_and_no_other(provisioned: SandboxInfo) -> None:
    info = provisioned
    must(
        sql_as_project(
            info,
            "ledger",
            "ledger",
            "CREATE TABLE IF NOT EXISTS entries (id int PRIMARY KEY); "
            "INSERT INTO entries VALUES (1) ON CONFLICT DO NOTHING;",
        )
    )
    assert must(sql_as_project(info, "ledger", "ledger", "SELECT count(*) FROM entries")).strip() == "1"
    refused = sql_as_project(info, "notes", "ledger", "SELECT 1")
    assert refused.returncode != 0 and "permission denied for database" in refused.stderr
    refused = sql_as_project(info, "ledger", "notes", "SELECT 1")
    assert refused.returncode != 0 and "permission denied for database" in refused.stderr
    # and a wrong password is refused: the role's password is the one in the master env
    wrong = ssh(info, "storage", "PGPASSWORD=wrong psql -X -tA -h 127.0.0.1 -U ledger -d ledger -c 'SELECT 1'")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


def test_each_project_reaches_only_its_own_redis_keys(provisioned: SandboxInfo) -> None:
    info = provisioned
    assert must(redis_as_project(info, "ledger", "SET", "ledger:greeting", "hi")).strip() == "OK"
    assert must(redis_as_project(info, "ledger", "GET", "ledger:greeting")).strip() == "hi"
    for args in (
        ("GET", "notes:anything"),
        ("SET", "greeting", "x"),
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "*"),
    ):
        answer = redis_as_project(info, "ledger", *args).stdout
        assert "NOPERM" in answer, (args, answer)
    assert "NOPERM" in redis_as_project(info, "notes", "GET", "ledger:greeting").stdout
    assert redis_admin(info, "GET", "ledger:greeting") == "hi"


def test_the_master_env_reaches_the_slot_and_wins_over_the_env_file(provisioned: SandboxInfo) -> None:
    info, images = provisioned, ensure_images()
    must(
        ssh(
            info,
            "app",
            "install -d -m 700 /opt/codeb/env/ledger && "
            "printf 'GREETING=hello\\nDATABASE_URL=postgresql://impostor@elsewhere/x\\n' "
            "> /opt/codeb/env/ledger/production.env && "
            "chmod 600 /opt/codeb/env/ledger/production.env",
        )
    )
    ok(codeb(info, "deploy", "ledger", "--image", images["v1"], "--push"))
    container = ssh(info, "app", "podman ps --filter label=codeb.project=ledger --format '{{.Names}}'").stdout.split()[
        0
    ]
    inside = _digests(must(ssh(info, "app", f"podman exec {container} /bin/busybox env")))
    master = _digests(must(ssh(info, "app", "cat /opt/codeb/env/ledger/master.env")))
    assert all(inside[key] == master[key] for key in PROTECTED)
    assert inside["GREETING"] == hashlib.sha256(b"hello").hexdigest()
    # a second deploy of the same release changes nothing
    assert ok(codeb(info, "deploy", "ledger", "--image", images["v1"], "--push")).strip().endswith("no change")
    ok(codeb(info, "remove", "ledger", "--force"))


def test_database_and_redis_answer_from_the_app_server_with_the_master_env(provisioned: SandboxInfo) -> None:
    """The URLs as the app sees them: Redis spoken to from the app server over the private network."""
    script = r"""
import socket
values = dict(l.split("=", 1) for l in open("/opt/codeb/env/ledger/master.env").read().splitlines())
rest = values["REDIS_URL"][len("redis://"):]
user, rest = rest.split(":", 1)
password, rest = rest.rsplit("@", 1)
host, port = rest.split("/")[0].rsplit(":", 1)
def command(*parts):
    return ("*%d\r\n" % len(parts) + "".join("$%d\r\n%s\r\n" % (len(p), p) for p in parts)).encode()
with socket.create_connection((host, int(port)), timeout=5) as s:
    s.sendall(command("AUTH", user, password) + command("GET", "ledger:greeting") + command("GET", "notes:x"))
    s.settimeout(2)
    data = b""
    try:
        while data.count(b"\r\n") < 4:
            data += s.recv(4096)
    except socket.timeout:
        pass
print(data.decode().replace("\r\n", "|"))
"""
    answer = must(ssh(provisioned, "app", "python3 -", stdin=script)).strip()
    assert answer.startswith("+OK|$2|hi|-NOPERM"), answer


def test_live_backup_settings_and_their_drift_is_undone_by_bootstrap(provisioned: SandboxInfo) -> None:
    info = provisioned
    live = sql(
        info,
        "postgres",
        "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings "
        "WHERE name IN ('wal_level', 'archive_mode', 'archive_timeout')",
    )
    assert live == "archive_mode=on archive_timeout=10 wal_level=replica"
    assert "archive-wal %p %f" in sql(info, "postgres", "SHOW archive_command")
    assert redis_admin(info, "CONFIG", "GET", "appendonly").split() == ["appendonly", "yes"]
    assert redis_admin(info, "CONFIG", "GET", "appendfsync").split() == ["appendfsync", "everysec"]
    sql(info, "postgres", "ALTER SYSTEM SET archive_timeout = 0;")
    sql(info, "postgres", "SELECT pg_reload_conf();")
    redis_admin(info, "CONFIG", "SET", "appendfsync", "no")
    out = ok(codeb(info, "bootstrap"))
    assert not out.strip().endswith("no change")
    assert sql(info, "postgres", "SHOW archive_timeout") == "10s"
    assert redis_admin(info, "CONFIG", "GET", "appendfsync").split() == ["appendfsync", "everysec"]
    assert ok(codeb(info, "bootstrap")).strip().endswith("no change")
