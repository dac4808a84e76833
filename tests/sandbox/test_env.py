"""Versioned env files and releases on the sandbox's servers: env versions kept on the app and the
backup server, an env change live only through a blue-green deploy, and a rollback to a release
past its grace period that brings back its image AND its env version's values."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from codeb_infra.sandbox import SandboxInfo
from tests.sandbox.conftest import REPO, Bootstrapped
from tests.sandbox.data_support import sql
from tests.sandbox.test_e2e import changed_ops, codeb, ok
from tests.support.images import build_env_image
from tests.support.sandbox_ssh import ssh
from tests.support.schema_app import build_schema_image

pytestmark = pytest.mark.sandbox

PROJECT = "envapp"
STORE = f"/opt/codeb/env-backup/{PROJECT}/production"
CA = "/var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt"


def pyinfra_vvv(info: SandboxInfo, script: str, **data: str) -> subprocess.CompletedProcess[str]:
    args = [p for k, v in data.items() for p in ("--data", f"{k}={v}")]
    return subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "-vvv", str(info.inventory), f"deploys/{script}.py", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )


def on(info: SandboxInfo, role: str, command: str) -> str:
    result = ssh(info, role, command)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout.strip()


def through_domain(info: SandboxInfo, path: str, preview: bool = False) -> str:
    """What the project's domain (or its preview) answers through the app server's Caddy over HTTPS."""
    name = f"{PROJECT}-preview.codeb.test" if preview else f"{PROJECT}.codeb.test"
    return on(info, "app", f"curl -sS --max-time 10 --cacert {CA} --resolve {name}:443:127.0.0.1 https://{name}{path}")


def in_container(info: SandboxInfo, slot: str) -> str:
    return on(info, "app", f"podman exec {PROJECT}-production-{slot} /bin/busybox sh -c 'echo \"$GREETING\"'")


def fresh(info: SandboxInfo, project: str) -> None:
    """The project as if never deployed (the sandbox is shared by runs): no slots, env or releases."""
    codeb(info, "remove", project, "--force")
    on(info, "app", f"rm -rf /opt/codeb/env-backup/{project} /opt/codeb/env/{project} /opt/codeb/releases/{project}")
    on(info, "backup", f"rm -rf /srv/backup/env/{project}")


def history(info: SandboxInfo) -> list[dict]:
    return json.loads(ok(codeb(info, "env", "history", PROJECT, "--json")))


def releases(info: SandboxInfo) -> list[dict]:
    return json.loads(ok(codeb(info, "releases", PROJECT, "--json")))


def test_env_versions_and_a_rollback_to_a_release_with_its_env(bootstrapped: Bootstrapped, tmp_path: Path) -> None:
    info = bootstrapped.info
    fresh(info, PROJECT)
    first, second = f"first-{secrets.token_hex(8)}", f"second-{secrets.token_hex(8)}"
    outputs: list[str] = []
    v1, v2 = build_env_image("env1", "v1", "1.0.0"), build_env_image("env2", "v2", "2.0.0")

    # Bad input: one clear line, exit 2, nothing written on the server.
    unparsable = tmp_path / "bad.env"
    unparsable.write_text(f"GREETING={first}\nthis line is not an assignment\n")
    for args, said in (
        (("env", "set", PROJECT, "DATABASE_URL=postgresql://x"), "comes from the project's master env"),
        (("env", "set", PROJECT, "lower=x"), "invalid variable name"),
        (("env", "set", PROJECT, f"GREETING={first}\nX=1"), "newline"),
        (("env", "import", PROJECT, str(unparsable)), "line 2: expected NAME=VALUE"),
    ):
        refused = codeb(info, *args)
        outputs.append(refused.stdout)
        assert refused.returncode == 2 and said in refused.stdout, refused.stdout
    assert (
        ssh(
            info, "app", f"test -e /opt/codeb/env-backup/{PROJECT} || test -e /opt/codeb/env/{PROJECT}/production.env"
        ).returncode
        == 1
    )

    # Env version 1 from a file, through the deploy script with -vvv; a second run changes nothing.
    env_file = tmp_path / "production.env"
    env_file.write_text(f"# shop settings\nGREETING={first}\nMODE=blue-green\n")
    made = pyinfra_vvv(info, "env", project=PROJECT, env_file=str(env_file))
    again = pyinfra_vvv(info, "env", project=PROJECT, env_file=str(env_file))
    outputs += [made.stdout, again.stdout]
    assert made.returncode == 0 and again.returncode == 0, made.stdout[-3000:] + again.stdout[-3000:]
    assert changed_ops(again.stdout) == [], again.stdout[-3000:]
    assert (
        on(info, "app", f"stat -c '%U %a' {STORE}/1.env /opt/codeb/env/{PROJECT}/production.env").split("\n")
        == ["root 600"] * 2
    )
    assert on(info, "backup", f"stat -c '%U %a' /srv/backup/env/{PROJECT}/production/1.env") == "codeb-backup 600"
    assert on(info, "backup", f"sha256sum < /srv/backup/env/{PROJECT}/production/1.env") == on(
        info, "app", f"sha256sum < {STORE}/1.env"
    )

    # Release 1: v1 with env version 1, promoted.
    deployed = pyinfra_vvv(info, "deploy", project=PROJECT, image=v1, push="true")
    outputs.append(deployed.stdout)
    assert deployed.returncode == 0, deployed.stdout[-3000:]
    ok(codeb(info, "promote", PROJECT))
    assert through_domain(info, "/cgi-bin/env") == f"GREETING={first}"

    # Env version 2, redeployed with --deploy into the inactive slot: previewed, the live slot untouched.
    live_id = on(info, "app", f"podman inspect --format '{{{{.Id}}}}' {PROJECT}-production-blue")
    outputs.append(ok(codeb(info, "env", "set", PROJECT, f"GREETING={second}", "--deploy")))
    assert through_domain(info, "/cgi-bin/env", preview=True) == f"GREETING={second}"
    assert through_domain(info, "/cgi-bin/env") == f"GREETING={first}"
    assert on(info, "app", f"podman inspect --format '{{{{.Id}}}}' {PROJECT}-production-blue") == live_id
    same = ok(codeb(info, "env", "set", PROJECT, f"GREETING={second}"))
    assert same.strip().endswith("no change"), same
    assert [(v["version"], v["changed"]) for v in history(info)] == [(1, []), (2, ["GREETING"])]
    assert ok(codeb(info, "env", "diff", PROJECT, "1", "2")).split() == ["~GREETING"]

    # v2 with env version 2, promoted; the v1 slot's grace period cut short by cleanup --force.
    outputs.append(ok(codeb(info, "deploy", PROJECT, "--image", v2, "--push")))
    ok(codeb(info, "promote", PROJECT))
    assert through_domain(info, "/") == "v2" and through_domain(info, "/cgi-bin/env") == f"GREETING={second}"
    ok(codeb(info, "cleanup", PROJECT, "--force"))
    before = history(info)

    # Rollback to release 1: its image ID and env version 1's values, health-checked and promoted.
    listed = {r["number"]: r for r in releases(info)}
    assert (listed[1]["image"], listed[1]["env_version"], listed[1]["app_version"]) == (v1, 1, "1.0.0")
    rolled = codeb(info, "rollback", PROJECT, "--release", "1")
    outputs.append(rolled.stdout)
    assert rolled.returncode == 0, rolled.stdout[-3000:]
    assert through_domain(info, "/") == "v1" and through_domain(info, "/cgi-bin/env") == f"GREETING={first}"
    active = json.loads(ok(codeb(info, "status", PROJECT, "--json")))["active_slot"]
    assert in_container(info, active) == first
    newest = releases(info)[-1]
    assert (newest["image_id"], newest["env_version"], newest["slot"]) == (listed[1]["image_id"], 1, active)
    assert history(info) == before, "a rollback to a release writes no env version"
    assert ok(codeb(info, "rollback", PROJECT, "--release", "1")).strip().endswith("no change")

    # The app server lost its env store: restored from the backup server, as a new version.
    on(info, "app", f"rm -rf /opt/codeb/env-backup/{PROJECT}")
    outputs.append(ok(codeb(info, "env", "restore", PROJECT, "--version", "1", "--from-backup")))
    restored = history(info)
    assert [v["version"] for v in restored] == [1, 2, 3] and restored[-1]["restored_from"] == 1
    assert ok(codeb(info, "env", "get", PROJECT, "GREETING")).strip() == first

    # No value in any output, pyinfra -vvv included, nor in the servers' journals.
    journals = on(info, "app", "journalctl --no-pager -q -o cat") + on(
        info, "backup", "journalctl --no-pager -q -o cat"
    )
    for secret in (first, second):
        for text in (*outputs, journals):
            assert secret not in text


def test_expand_contract_with_a_real_schema_change_tied_to_the_grace_period(bootstrapped: Bootstrapped) -> None:
    """s1 writes `notes.body`; s2's migrate step adds `title` (s2 writes it) and its contract step
    drops `body`. A failing migrate step fails its deploy; during the grace period s1 keeps writing
    against the expanded schema and a rollback to it works (the contract step is then cancelled);
    a contract step runs once, only after the previous release's grace period."""
    info = bootstrapped.info
    project = "migrapp"
    fresh(info, project)
    ok(codeb(info, "provision", project))
    sql(info, project, "DROP TABLE IF EXISTS notes")
    s1, s2 = build_schema_image("s1", "body"), build_schema_image("s2", "title")
    psql = 'psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c'
    create = f'{psql} "CREATE TABLE notes (id serial PRIMARY KEY, body text)"'
    expand, contract = (
        f'{psql} "ALTER TABLE notes ADD COLUMN IF NOT EXISTS title text"',
        f'{psql} "ALTER TABLE notes DROP COLUMN body"',
    )

    def domain(path: str = "/") -> str:
        name = f"{project}.codeb.test"
        return on(
            info, "app", f"curl -sS --max-time 20 --cacert {CA} --resolve {name}:443:127.0.0.1 https://{name}{path}"
        )

    def slot_note(slot: str) -> str:
        """A write through the slot itself (its port on the app server), not through the domain."""
        port = json.loads(ok(codeb(info, "status", project, "--json")))["slots"][slot]["port"]
        return on(info, "app", f"curl -sS --max-time 20 http://127.0.0.1:{port}/cgi-bin/note")

    def columns() -> str:
        return sql(
            info,
            project,
            "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'notes'",
        )

    def contract_states() -> list[tuple[int, str | None]]:
        found = json.loads(ok(codeb(info, "releases", project, "--json")))
        return [(r["number"], r["contract_state"]) for r in found]

    ok(codeb(info, "deploy", project, "--image", s1, "--push", "--migrate", create))
    ok(codeb(info, "promote", project))
    first = json.loads(ok(codeb(info, "status", project, "--json")))["active_slot"]
    assert domain("/cgi-bin/note").startswith("s1 wrote ")
    failed = codeb(info, "deploy", project, "--image", s2, "--push", "--migrate", "echo migrating; exit 3")
    assert failed.returncode == 1, failed.stdout[-3000:]
    assert domain() == "s1" and columns() == "body,id"
    second = "green" if first == "blue" else "blue"
    assert json.loads(ok(codeb(info, "status", project, "--json")))["slots"][second]["state"] == "empty"

    # Expanded: s2 writes the new column while s1, in its grace period, still writes the old one.
    ok(codeb(info, "deploy", project, "--image", s2, "--push", "--migrate", expand, "--contract", contract))
    ok(codeb(info, "promote", project))
    assert columns() == "body,id,title"
    assert domain("/cgi-bin/note").startswith("s2 wrote ") and slot_note(first).startswith("s1 wrote ")
    ok(codeb(info, "rollback", project))
    assert contract_states()[-1] == (2, "cancelled")  # by the rollback itself
    assert domain() == "s1" and domain("/cgi-bin/note").startswith("s1 wrote ")
    ok(codeb(info, "cleanup", project, "--force"))
    assert contract_states()[-1] == (2, "cancelled") and columns() == "body,id,title"

    # Deployed again: the contract step waits for the grace period, then runs once.
    ok(codeb(info, "deploy", project, "--image", s2, "--migrate", expand, "--contract", contract))
    ok(codeb(info, "promote", project))
    ok(codeb(info, "cleanup", project))  # grace still running: nothing to clean, the step waits
    assert contract_states()[-1] == (3, "pending") and columns() == "body,id,title"
    ok(codeb(info, "cleanup", project, "--force"))
    assert contract_states()[-1] == (3, "done") and columns() == "id,title"
    assert domain("/cgi-bin/note").startswith("s2 wrote ")
    # A second run of `DROP COLUMN body` would fail: the step is not run again.
    assert ok(codeb(info, "cleanup", project, "--force")).strip().endswith("no change")
    # Every write kept: three by s1 (whose column is gone now), two by s2.
    assert sql(info, project, "SELECT count(*) || ' ' || count(title) FROM notes") == "5 2"
