"""The control plane on the sandbox's app server, reached as a user reaches it: HTTPS to
https://api.codeb.test through the app server's Caddy (pinned address, Caddy's internal root),
keys made with `codeb keys`, effects checked independently (what the domain serves, the audit
database read with sqlite3 on the server, the journal and Caddy's log grepped for every secret)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from codeb_infra.controller import images as controller_images
from codeb_infra.controller import probe
from tests.sandbox.conftest import Bootstrapped, codeb, ok
from tests.support.api_client import mcp_session
from tests.support.images import ensure_images
from tests.support.sandbox_ssh import SSH_OPTIONS, ssh

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
PROJECT, OTHER = "apishop", "apiblog"
API = "api.codeb.test"
ENV_SECRET = "envvalue-7c1d9a0f3b"
REWRITE_CHAIN = """
import sqlite3, sys
from codeb_infra.api.audit import GENESIS, row_hash
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.row_factory = sqlite3.Row
c.execute("DROP TRIGGER audit_no_update")
c.execute("UPDATE audit SET error = 'rewritten' WHERE seq = 2")
prev = GENESIS
for row in c.execute("SELECT * FROM audit ORDER BY seq").fetchall():
    digest = row_hash(prev, dict(row))
    c.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, row["seq"]))
    prev = digest
c.execute("CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'append-only'); END")
"""


def on_app(b: Bootstrapped, command: str) -> str:
    result = ssh(b.info, "app", command)
    assert result.returncode == 0, result.stderr
    return result.stdout


class Api:
    """POST /api/tool through Caddy, as curl or a CI job sends it."""

    def __init__(self, b: Bootstrapped) -> None:
        self.port = b.info.servers["app"].https_port
        self.root = on_app(b, f"cat {probe.CADDY_LOCAL_ROOT}")

    def post(self, body: bytes, headers: dict[str, str], path: str = "/api/tool") -> tuple[int, dict[str, Any]]:
        import ssl

        connection = probe.PinnedHTTPSConnection(
            API, "127.0.0.1", self.port, ssl.create_default_context(cadata=self.root), 600
        )
        try:
            connection.request(
                "POST", path, body=body, headers={"Host": API, "Content-Type": "application/json", **headers}
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    def call(self, key: str | None, tool: str, **params: Any) -> tuple[int, dict[str, Any]]:
        return self.post(json.dumps({"tool": tool, "params": params}).encode(), {"X-API-Key": key} if key else {})


def new_key(b: Bootstrapped, role: str, *projects: str, name: str | None = None) -> tuple[str, str]:
    out = ok(
        codeb(
            b,
            "keys",
            "create",
            "--role",
            role,
            *(a for p in projects for a in ("--project", p)),
            *(["--name", name] if name else []),
        )
    )
    key = out.strip().splitlines()[-1]
    assert key.startswith(f"codeb_{role}_")
    return out.split()[1], key  # "created ID ..."


def audit_rows(b: Bootstrapped, after: int = 0) -> list[dict[str, Any]]:
    out = on_app(
        b,
        "sqlite3 -json /var/lib/codeb/audit.db "
        f"'SELECT seq, key_id, role, tool, project, outcome, status, params, actor, error FROM audit WHERE seq > {after} ORDER BY seq'",
    )
    return json.loads(out or "[]")


def last_seq(b: Bootstrapped) -> int:
    return int(on_app(b, "sqlite3 /var/lib/codeb/audit.db 'SELECT coalesce(max(seq), 0) FROM audit'").strip())


def push_image(b: Bootstrapped, image: str) -> None:
    """Put a local image on the app server (the servers reach no registry); not what is tested."""
    archive = controller_images.save_to_archive(image)
    try:
        with open(archive, "rb") as stream:
            subprocess.run(
                [
                    "ssh",
                    "-i",
                    str(b.info.ssh_key),
                    "-p",
                    str(b.info.servers["app"].ssh_port),
                    *SSH_OPTIONS,
                    "root@127.0.0.1",
                    "podman load --quiet",
                ],
                stdin=stream,
                check=True,
                capture_output=True,
                timeout=300,
            )
    finally:
        os.unlink(archive)


@pytest.fixture(scope="module")
def setup(bootstrapped: Bootstrapped) -> dict[str, Any]:
    b = bootstrapped
    images = ensure_images()
    for env in ("production", "staging"):
        ok(codeb(b, "remove", PROJECT, "--env", env, "--force"))
    on_app(
        b,
        f"mkdir -p /opt/codeb/env/{PROJECT} && printf 'SECRET_TOKEN={ENV_SECRET}\\n' > /opt/codeb/env/{PROJECT}/production.env"
        f" && chmod 600 /opt/codeb/env/{PROJECT}/production.env",
    )
    deployed = ok(codeb(b, "deploy", PROJECT, "--image", images["v1"], "--push"))
    push_image(b, images["v2"])
    keys = {role: new_key(b, role, name=f"test {role}") for role in ("admin", "dev", "view")}
    keys["dev_other"] = new_key(b, "dev", OTHER)
    return {"images": images, "keys": keys, "api": Api(b), "cli_output": deployed}


def test_health_needs_no_key_and_the_api_listens_on_loopback_only(
    bootstrapped: Bootstrapped, setup: dict[str, Any]
) -> None:
    api: Api = setup["api"]
    status, body = probe.get(API, address="127.0.0.1", port=api.port, https=True, root_pem=api.root, path="/health")
    assert status == 200 and json.loads(body)["ok"] is True
    # node-exporter listens on port 9100 too, on the internal (mesh) address: only the API's own
    # listener must be on loopback alone.
    listening = on_app(bootstrapped, "ss -ltnpH 'sport = :9100' | grep -v prometheus-node | awk '{print $4}'").split()
    assert listening == ["127.0.0.1:9100"]
    app = bootstrapped.info.servers["app"].address
    assert on_app(bootstrapped, f"dig +short @{app} {API}").split() == [app]  # our PowerDNS names the API


def test_roles_and_project_scope(bootstrapped: Bootstrapped, setup: dict[str, Any]) -> None:
    b, api, keys = bootstrapped, setup["api"], setup["keys"]
    domain = f"{PROJECT}.codeb.test"
    before = last_seq(b)
    status, answer = api.call(keys["view"][1], "promote", project=PROJECT)
    assert status == 403 and "view key may not use promote" in answer["error"]
    status, answer = api.call(keys["dev_other"][1], "promote", project=PROJECT)
    assert status == 403 and f"limited to {OTHER}" in answer["error"]
    status, answer = api.call(keys["dev"][1], "promote", project=PROJECT)
    assert status == 200, answer
    assert answer["result"]["changed"] >= 1
    assert probe.get(domain, address="127.0.0.1", port=api.port, https=True, root_pem=api.root) == (200, "v1")
    status, listed = api.call(keys["dev_other"][1], "list_projects")
    assert status == 200 and all(p["project"] == OTHER for p in listed["result"])
    rows = audit_rows(b, before)
    assert [(r["tool"], r["outcome"], r["status"]) for r in rows] == [
        ("promote", "denied", 403),
        ("promote", "denied", 403),
        ("promote", "allowed", 200),
        ("list_projects", "allowed", 200),
    ]
    assert rows[2]["key_id"] == keys["dev"][0] and rows[2]["role"] == "dev"


def test_bad_input_is_refused_audited_and_runs_nothing(bootstrapped: Bootstrapped, setup: dict[str, Any]) -> None:
    b, api, keys = bootstrapped, setup["api"], setup["keys"]
    admin = keys["admin"][1]
    registry = (
        "md5sum /opt/codeb/registry/ssot.json /opt/codeb/registry/slots.json; ls /opt/codeb/locks; podman ps -aq | sort"
    )
    state = on_app(b, registry)
    before = last_seq(b)
    cases = [
        (api.post(b'{"tool": "promote", ', {"X-API-Key": admin}), 400),
        (api.call(admin, "format_disk"), 400),
        (api.call(admin, "promote", project="../x"), 400),
        (api.call(admin, "promote", project="a;b"), 400),
        (api.call(admin, "promote", project="-rf"), 400),
        (api.call(admin, "deploy_project", project=PROJECT), 400),
        (
            api.post(
                json.dumps({"tool": "promote", "params": {"project": "x" * (2 * 1024 * 1024)}}).encode(),
                {"X-API-Key": admin},
            ),
            413,
        ),
        (api.call(admin[:-5] + ("AAAAA" if not admin.endswith("AAAAA") else "BBBBB"), "list_projects"), 401),
    ]
    for (status, answer), wanted in cases:
        assert status == wanted and answer["ok"] is False and answer["error"], answer
    rows = audit_rows(b, before)
    assert [r["status"] for r in rows] == [wanted for _, wanted in cases]
    assert on_app(b, registry) == state


def test_revoked_and_expired_keys_are_refused(bootstrapped: Bootstrapped, setup: dict[str, Any]) -> None:
    b, api = bootstrapped, setup["api"]
    revoked_id, revoked = new_key(b, "view", name="to revoke")
    expired_id, expired = new_key(b, "view", name="to expire")
    assert api.call(revoked, "list_projects")[0] == 200
    ok(codeb(b, "keys", "revoke", revoked_id))
    on_app(
        b,
        f"sqlite3 /var/lib/codeb/keys.db \"UPDATE keys SET expires = '2000-01-01T00:00:00+00:00' WHERE id = '{expired_id}'\"",
    )
    status, answer = api.call(revoked, "list_projects")
    assert status == 401 and "revoked" in answer["error"]
    status, answer = api.call(expired, "list_projects")
    assert status == 401 and "expired" in answer["error"]
    listed = json.loads(ok(codeb(b, "keys", "list", "--json")))
    assert {k["id"] for k in listed} >= {revoked_id, expired_id}
    assert revoked not in json.dumps(listed) and expired not in json.dumps(listed)


def test_two_concurrent_deploys_one_runs_the_other_gets_409_and_reads_go_on(
    bootstrapped: Bootstrapped, setup: dict[str, Any]
) -> None:
    api, keys = setup["api"], setup["keys"]
    dev = keys["dev"][1]
    results: list[tuple[int, dict[str, Any]]] = []

    def deploy() -> None:
        results.append(api.call(dev, "deploy_project", project=PROJECT, image=setup["images"]["v2"]))

    threads = [threading.Thread(target=deploy) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.3)
    started = time.monotonic()
    status, answer = api.call(keys["view"][1], "slot_status", project=PROJECT)
    read_seconds = time.monotonic() - started
    assert status == 200, answer
    for thread in threads:
        thread.join(timeout=600)
    assert sorted(s for s, _ in results) == [200, 409], results
    assert "busy with deploy_project" in next(a for s, a in results if s == 409)["error"]
    deployed = next(a for s, a in results if s == 200)["result"]["status"]
    assert setup["images"]["v2"] in json.dumps(deployed["slots"])
    assert probe.get(
        f"{PROJECT}-preview.codeb.test", address="127.0.0.1", port=api.port, https=True, root_pem=api.root
    ) == (200, "v2")
    print(f"\nslot_status while a deploy ran: {read_seconds:.2f}s")


def test_mcp_through_caddy_with_the_official_client(bootstrapped: Bootstrapped, setup: dict[str, Any]) -> None:
    api, keys = setup["api"], setup["keys"]
    found = mcp_session(
        f"https://{API}/mcp",
        keys["view"][1],
        pinned=("127.0.0.1", api.port),
        root_pem=api.root,
        calls=[("slot_status", {"project": PROJECT}), ("promote", {"project": PROJECT})],
    )
    assert found["tools"]["promote"].annotations.read_only_hint is False
    assert found["tools"]["remove_project"].annotations.destructive_hint is True
    assert found["tools"]["list_projects"].annotations.read_only_hint is True
    status, refused = found["results"]
    assert not status.is_error and PROJECT in status.content[0].text
    assert refused.is_error and "403" in refused.content[0].text


def test_cli_changes_are_audited_with_the_ssh_actor(bootstrapped: Bootstrapped, setup: dict[str, Any]) -> None:
    # A remove of its own (the setup's removes find nothing to remove on a fresh sandbox).
    before = last_seq(bootstrapped)
    ok(codeb(bootstrapped, "deploy", PROJECT, "--env", "staging", "--image", setup["images"]["v1"]))
    ok(codeb(bootstrapped, "promote", PROJECT, "--env", "staging", "--no-watch"))
    ok(codeb(bootstrapped, "promote", PROJECT, "--env", "staging", "--no-watch"))  # nothing to switch: no row
    ok(codeb(bootstrapped, "remove", PROJECT, "--env", "staging", "--force"))
    rows = json.loads(ok(codeb(bootstrapped, "audit", "--project", PROJECT, "--json")))
    cli = [r for r in rows if r["source"] == "cli"]
    # The promote's row comes from `codeb-state switch` itself, once it switched.
    assert [(r["tool"], r["outcome"]) for r in audit_rows(bootstrapped, before)] == [
        ("deploy_project", "allowed"),
        ("promote", "allowed"),
        ("remove_project", "allowed"),
    ]
    assert any(
        r["tool"] == "deploy_project" and r["outcome"] == "allowed" and r["actor"].startswith("ssh root from ")
        for r in cli
    ), cli
    assert any(r["tool"] == "remove_project" for r in cli)


def test_the_audit_log_refuses_changes_and_verify_catches_tampering(
    bootstrapped: Bootstrapped, setup: dict[str, Any]
) -> None:
    b = bootstrapped
    refused = ssh(
        b.info, "app", "sqlite3 /var/lib/codeb/audit.db \"UPDATE audit SET outcome = 'allowed' WHERE seq = 1\""
    )
    assert refused.returncode != 0 and "append-only" in refused.stderr
    assert ssh(b.info, "app", "sqlite3 /var/lib/codeb/audit.db 'DELETE FROM audit WHERE seq = 1'").returncode != 0
    on_app(b, "systemctl start codeb-audit-head.service")
    assert "shipped heads match" in ok(codeb(b, "audit", "verify"))
    # Each tamper on a copy of the live log (the live one stays whole for the other tests).
    python = "/opt/codeb/api/venv/bin/python -m codeb_infra.api.admin audit-verify"
    untrigger = "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"
    tampers = {
        "edit": f"{untrigger} UPDATE audit SET error = 'edited' WHERE seq = 3;",
        "delete": f"{untrigger} DELETE FROM audit WHERE seq = 3;",
        "reorder": f"{untrigger} UPDATE audit SET seq = -1 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 4;"
        " UPDATE audit SET seq = 4 WHERE seq = -1;",
    }
    for what, sql in tampers.items():
        result = ssh(
            b.info,
            "app",
            f'cp /var/lib/codeb/audit.db /tmp/t.db && sqlite3 /tmp/t.db "{sql}" && '
            f"CODEB_API_AUDIT_DB=/tmp/t.db {python} --local-only; rc=$?; rm -f /tmp/t.db; exit $rc",
        )
        assert result.returncode == 1, (what, result.stdout, result.stderr)
        assert '"problem": "row 3' in result.stdout, (what, result.stdout)
    # The whole chain recomputed so that it verifies on its own: only the shipped head catches it.
    result = ssh(
        b.info,
        "app",
        "cp /var/lib/codeb/audit.db /tmp/t.db && /opt/codeb/api/venv/bin/python - /tmp/t.db && "
        f"CODEB_API_AUDIT_DB=/tmp/t.db {python} --local-only && CODEB_API_AUDIT_DB=/tmp/t.db {python}; "
        "rc=$?; rm -f /tmp/t.db; exit $rc",
        stdin=REWRITE_CHAIN,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "differs from the head hash shipped to the backup server" in result.stdout


def test_keys_and_env_values_appear_in_no_log(bootstrapped: Bootstrapped, setup: dict[str, Any]) -> None:
    b = bootstrapped
    secrets = [key for _, key in setup["keys"].values()] + [ENV_SECRET]
    secret_file = on_app(b, "cat /etc/codeb/secrets/api-keys.secret").strip()
    logs = on_app(
        b, "journalctl --no-pager -o cat 2>/dev/null; cat /var/log/caddy/api.access.log /etc/codeb/api/inventory.py"
    )
    access_log = on_app(b, "cat /var/log/caddy/api.access.log")
    assert "/api/tool" in access_log and "X-Api-Key" not in access_log and "Authorization" not in access_log
    audit = on_app(b, "sqlite3 /var/lib/codeb/audit.db 'SELECT * FROM audit'")
    pyinfra = b.first.output + b.second.output + setup["cli_output"]
    for secret in [*secrets, secret_file]:
        for where, text in (("journal/caddy log", logs), ("audit log", audit), ("pyinfra output", pyinfra)):
            assert secret not in text, f"a secret is in the {where}"
    assert on_app(
        b, "stat -c '%a %U' /etc/codeb/secrets/api-keys.secret /var/lib/codeb/audit.db /var/lib/codeb/keys.db"
    ).split() == ["600", "root", "600", "root", "600", "root"]


def workflow_steps(
    path: Path, secrets: dict[str, str], overrides: dict[str, str]
) -> list[tuple[str, str, dict[str, str]]]:
    """The `run:` steps of a shipped workflow that talk to the API, each with the env the workflow
    declares (job-wide, then the step's), `${{ secrets.X }}` filled in, then ``overrides``."""
    import re

    import yaml

    workflow = yaml.safe_load(path.read_text())

    def fill(value: str) -> str:
        return re.sub(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", lambda m: secrets[m.group(1)], str(value))

    steps = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "/api/tool" not in step.get("run", ""):
                continue  # checkout, build and push need GitHub and a registry: not here
            env = {k: fill(v) for k, v in {**workflow.get("env", {}), **step.get("env", {})}.items()}
            steps.append((step["name"], step["run"], {**env, **overrides}))
    return steps


def test_the_shipped_github_workflows_deploy_and_promote(
    bootstrapped: Bootstrapped, setup: dict[str, Any], tmp_path: Path
) -> None:
    api, keys = setup["api"], setup["keys"]
    # curl reads its resolve and CA options from $CURL_HOME/.curlrc, so the steps run unedited.
    (tmp_path / "root.pem").write_text(api.root)
    (tmp_path / ".curlrc").write_text(f'resolve = "{API}:{api.port}:127.0.0.1"\ncacert = "{tmp_path / "root.pem"}"\n')
    overrides = {
        "CODEB_API": f"https://{API}:{api.port}",
        "PROJECT": PROJECT,
        "IMAGE": setup["images"]["v2"],
        "CURL_HOME": str(tmp_path),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
    }
    ran = []
    for workflow in ("deploy.yml", "preview.yml"):
        for name, script, env in workflow_steps(
            ROOT / "examples" / "github-actions" / workflow, {"CODEB_API_KEY": keys["dev"][1]}, overrides
        ):
            result = subprocess.run(
                ["bash", "-e", "-c", script],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, (workflow, name, result.stdout[-2000:], result.stderr[-2000:])
            assert keys["dev"][1] not in result.stdout + result.stderr
            ran.append(name)
    assert ran == [
        "Deploy into the inactive slot",
        "Wait until the preview serves the new release",
        "Promote",
        "Deploy the preview",
    ]
    assert probe.get(f"{PROJECT}.codeb.test", address="127.0.0.1", port=api.port, https=True, root_pem=api.root) == (
        200,
        "v2",
    )
    assert probe.get(
        f"{PROJECT}-staging-preview.codeb.test", address="127.0.0.1", port=api.port, https=True, root_pem=api.root
    ) == (200, "v2")


REPORT_KEY = "-F /dev/null -i /etc/codeb/api/report_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10"
REPORT_KEY_SSH = (
    f"ssh {REPORT_KEY} -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/codeb/api/known_hosts"
    " -o GlobalKnownHostsFile=/dev/null"
)


READ_CHECKS = ("SSH", "codeb-health")
"""The findings of a server that could not be read at all."""


def _last_archived(b: Bootstrapped) -> str:
    return on_server(b, "storage", "runuser -u postgres -- psql -XtAc 'select last_archived_wal from pg_stat_archiver'")


def on_server(b: Bootstrapped, role: str, command: str) -> str:
    result = ssh(b.info, role, command)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_health_check_and_backup_status_read_the_other_servers_through_the_report_key(
    bootstrapped: Bootstrapped, setup: dict[str, Any]
) -> None:
    b, api, keys = bootstrapped, setup["api"], setup["keys"]
    # What pg_stat_archiver says on storage, and what backup_status says through the API, read
    # until no segment was archived in between (archive_timeout is 10 s in the sandbox).
    for _ in range(12):
        before = _last_archived(b)
        if not before:  # a fresh sandbox: the first segment is at most archive_timeout away
            time.sleep(5)
            continue
        status, answer = api.call(keys["admin"][1], "backup_status")
        assert status == 200, answer
        newest = on_server(b, "backup", "ls /srv/backup/wal | grep -v '\\.' | sort | tail -n 1")
        if _last_archived(b) == before:
            break
    assert before, "storage archived no WAL segment within a minute"
    checks = {c["name"]: c for c in answer["result"]["checks"]}
    assert before in checks["WAL archiving"]["detail"], checks["WAL archiving"]
    assert "storage server" not in checks and "backup server" not in checks, checks  # both were asked
    assert answer["result"]["store"]["wal"]["newest"] == newest

    status, answer = api.call(keys["view"][1], "health_check")
    assert status == 200, answer
    checked = answer["result"]["checked"]
    for role in ("streaming", "storage", "backup"):
        assert any(line.startswith(f"{role}: SSH, ") for line in checked), checked
        assert f"{role}: listeners on public addresses" in checked, checked
        assert f"{role}: WireGuard wg0 and 3 peers" in checked, checked  # each of the other three
        unread = [f for f in answer["result"]["findings"] if f["server"] == role and f["check"] in READ_CHECKS]
        assert not unread, unread
    assert "@local: WireGuard wg0 and 3 peers" in checked, checked
    assert "backup: WAL archiving" in checked


def test_the_report_key_runs_the_whitelist_only_and_only_from_the_app_server(
    bootstrapped: Bootstrapped, setup: dict[str, Any]
) -> None:
    b, api, keys = bootstrapped, setup["api"], setup["keys"]
    storage = b.internal("storage")
    answer = json.loads(on_app(b, f"{REPORT_KEY_SSH} root@{storage} health || true"))
    assert answer["health"]["exit"] == 0 and json.loads(answer["health"]["output"])["units"]
    for asked in ("id", "'health; id'", "bash", "cat /etc/codeb/secrets/redis.password"):
        result = ssh(b.info, "app", f"{REPORT_KEY_SSH} root@{storage} {asked}")
        assert result.returncode == 2, (asked, result.stdout, result.stderr)
        assert json.loads(result.stdout)["error"].startswith("refused: "), result.stdout
        assert "uid=" not in result.stdout
    # The same key from another of the app server's addresses (its sandbox network one) is refused.
    outside = ssh(
        b.info,
        "app",
        f"ssh {REPORT_KEY} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        f" -b {b.address('app')} root@{b.address('storage')} health",
    )
    assert outside.returncode == 255 and "Permission denied" in outside.stderr, outside

    # Revoked on storage: a finding on that server and a failed check, not an error.
    on_server(b, "storage", "cp -p /root/.ssh/authorized_keys /root/.ssh/authorized_keys.kept")
    try:
        on_server(b, "storage", "sed -i '/ codeb-api-reports$/d' /root/.ssh/authorized_keys")
        status, answer = api.call(keys["view"][1], "health_check")
        assert status == 200, answer
        findings = [f for f in answer["result"]["findings"] if f["server"] == "storage"]
        assert any("Permission denied" in f["problem"] for f in findings), answer["result"]["findings"]
        assert not [f for f in answer["result"]["findings"] if f["server"] == "backup" and f["check"] in READ_CHECKS]
        status, answer = api.call(keys["admin"][1], "backup_status")
        checks = {c["name"]: c for c in answer["result"]["checks"]}
        assert status == 200 and not answer["result"]["ok"] and not checks["storage server"]["ok"], answer
        assert "backup server" not in checks and "WAL on backup server" in checks, checks
    finally:
        on_server(b, "storage", "mv /root/.ssh/authorized_keys.kept /root/.ssh/authorized_keys")
