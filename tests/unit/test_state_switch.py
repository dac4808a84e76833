"""codeb-state snapshot and switch, run as a real program against a temp registry, pointer
files and lock directory (podman is pointed at a missing binary: no containers)."""

import base64
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from codeb_infra.api.audit import AuditLog
from codeb_infra.operations import registry as registry_ops
from codeb_infra.remote import codeb_releases, codeb_state

TOOL = [sys.executable, str(Path(codeb_state.__file__))]
GREEN_ACTIVE = {"blue": {"state": "grace"}, "green": {"state": "active"}}
BLUE_ACTIVE = {"blue": {"state": "active"}, "green": {"state": "deployed"}}


def run(*args, tool=TOOL, env=None):
    return subprocess.run([*tool, *args], capture_output=True, text=True, timeout=30, env=env)


def b64(obj):
    return base64.b64encode(json.dumps(obj).encode()).decode()


def setup(tmp_path, record=BLUE_ACTIVE):
    registry, locks, upstreams = tmp_path / "registry", tmp_path / "locks", tmp_path / "upstreams"
    registry.mkdir()
    (registry / "slots.json").write_text(json.dumps({"version": 1, "slots": {"app": {"production": record}}}))
    (registry / "ssot.json").write_text(
        json.dumps({"version": 1, "projects": {"app": {"production": {"domain": "app.x"}}, "other": {}}})
    )
    upstreams.mkdir()
    (upstreams / "app.active").write_text("127.0.0.1:4000\n")
    return registry, locks, upstreams


def switch(
    registry, locks, upstreams, *, expect, record=GREEN_ACTIVE, holder="promote by test", extra=(), tool=TOOL, env=None
):
    return run(
        "switch",
        "--registry",
        str(registry),
        "--locks",
        str(locks),
        "--project",
        "app",
        "--env",
        "production",
        "--holder",
        holder,
        "--expect",
        expect,
        "--record",
        b64(record),
        "--pointer",
        f"{upstreams}/app.active=127.0.0.1:4001",
        "--pointer",
        f"{upstreams}/app.preview=127.0.0.1:4000",
        *extra,
        tool=tool,
        env=env,
    )


def test_snapshot_is_one_project_and_its_pointers(tmp_path):
    registry, _, upstreams = setup(tmp_path)
    found = run(
        "snapshot",
        "--registry",
        str(registry),
        "--project",
        "app",
        "--env",
        "production",
        "--pointer",
        str(upstreams / "app.active"),
        "--pointer",
        str(upstreams / "app.preview"),
        "--podman",
        str(tmp_path / "no-podman"),
    )
    assert found.returncode == 0, found.stderr
    snap = json.loads(found.stdout)
    assert snap["project"] == {"domain": "app.x"} and snap["slots"] == BLUE_ACTIVE
    assert snap["pointers"] == {str(upstreams / "app.active"): "127.0.0.1:4000", str(upstreams / "app.preview"): None}
    assert snap["containers"] == [] and len(snap["tool"]) == 16


def test_switch_moves_pointers_records_and_unlocks(tmp_path):
    registry, locks, upstreams = setup(tmp_path)
    done = switch(registry, locks, upstreams, expect=codeb_state.digest(BLUE_ACTIVE))
    assert done.returncode == 0, done.stderr
    assert (upstreams / "app.active").read_text() == "127.0.0.1:4001\n"
    assert (upstreams / "app.preview").read_text() == "127.0.0.1:4000\n"
    assert json.loads((registry / "slots.json").read_text())["slots"]["app"]["production"] == GREEN_ACTIVE
    assert list(locks.iterdir()) == [], "the lock is released"
    assert not list(upstreams.glob("*.tmp"))
    again = switch(registry, locks, upstreams, expect=codeb_state.digest(GREEN_ACTIVE))
    assert again.returncode == 0 and again.stdout == "", "a second run writes nothing"
    raced = switch(registry, locks, upstreams, expect=codeb_state.digest(BLUE_ACTIVE))
    assert raced.returncode == codeb_state.EXIT_CONFLICT, "a run that planned from the old record lost the race"


def test_switch_refuses_a_record_changed_since_the_plan(tmp_path):
    registry, locks, upstreams = setup(tmp_path)
    stale = switch(registry, locks, upstreams, expect=codeb_state.digest({"blue": {"state": "deployed"}}))
    assert stale.returncode == codeb_state.EXIT_CONFLICT and "changed since this run read it" in stale.stderr
    assert (upstreams / "app.active").read_text() == "127.0.0.1:4000\n", "no pointer moved"
    assert list(locks.iterdir()) == []


def test_switch_under_another_runs_lock_names_it_waits_or_breaks_it(tmp_path):
    registry, locks, upstreams = setup(tmp_path)
    lock = ["--dir", str(locks), "--project", "app", "--env", "production"]
    assert run("lock", *lock, "--holder", "deploy by ci").returncode == 0
    expect = codeb_state.digest(BLUE_ACTIVE)
    held = switch(registry, locks, upstreams, expect=expect)
    assert held.returncode == codeb_state.EXIT_LOCKED
    assert held.stderr.startswith(codeb_state.LOCK_HELD) and "locked by deploy by ci since 20" in held.stderr
    assert (upstreams / "app.active").read_text() == "127.0.0.1:4000\n"
    assert json.loads((locks / "app.production.lock").read_text())["holder"] == "deploy by ci", (
        "the holder's lock stays"
    )

    release = threading.Timer(0.5, lambda: run("unlock", *lock, "--holder", "deploy by ci"))
    release.start()
    started = time.monotonic()
    waited = switch(registry, locks, upstreams, expect=expect, extra=("--wait", "10"))
    assert waited.returncode == 0, waited.stderr
    assert 0.4 < time.monotonic() - started < 10
    assert (upstreams / "app.active").read_text() == "127.0.0.1:4001\n"

    assert run("lock", *lock, "--holder", "a run that died").returncode == 0
    broken = switch(
        registry, locks, upstreams, expect=codeb_state.digest(GREEN_ACTIVE), record=BLUE_ACTIVE, extra=("--break-lock",)
    )
    assert broken.returncode == 0 and "breaking lock held by a run that died" in broken.stderr
    assert list(locks.iterdir()) == []


def installed(tmp_path):
    """codeb-state as the server has it: the tool and, beside it, the API's audit log module."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(codeb_state.__file__, bin_dir / "codeb-state")
    shutil.copy(registry_ops.AUDIT_SOURCE, bin_dir / codeb_state.AUDIT_MODULE)
    return [sys.executable, str(bin_dir / "codeb-state")]


def fold_args(tmp_path, api_python=sys.executable):
    """A switch's audit row and one rolled-back release, for the real codeb-releases on a release
    log whose release 2 has a pending contract step."""
    log = tmp_path / "releases" / "app" / "production.json"
    log.parent.mkdir(parents=True)
    releases = [
        {"number": 1, "slot": "blue", "contract_state": None},
        {"number": 2, "slot": "green", "contract": "drop body", "contract_state": "pending"},
    ]
    log.write_text(json.dumps({"releases": releases}))
    entry = {"actor": "ssh root from me@here", "tool": "rollback", "project": "app", "env": "production"}
    extra = [
        "--audit",
        b64({**entry, "source": "cli", "outcome": "allowed", "params": {"project": "app"}}),
        "--audit-db",
        str(tmp_path / "audit.db"),
        "--api-python",
        str(api_python),
        "--releases-tool",
        str(Path(codeb_releases.__file__)),
        "--releases-root",
        str(tmp_path),
        "--cancel-contract",
        "2",
    ]
    return log, extra


def audit_rows(path):
    return AuditLog(str(path)).rows() if path.exists() else []


def test_switch_appends_its_audit_row_and_cancels_the_rolled_back_contract_once_switched(tmp_path):
    registry, locks, upstreams = setup(tmp_path)
    log, extra = fold_args(tmp_path)
    tool, audit_db = installed(tmp_path), tmp_path / "audit.db"
    lock = ["--dir", str(locks), "--project", "app", "--env", "production", "--holder", "ci"]

    stale = switch(registry, locks, upstreams, expect=codeb_state.digest(GREEN_ACTIVE), extra=extra, tool=tool)
    assert stale.returncode == codeb_state.EXIT_CONFLICT
    assert run("lock", *lock).returncode == 0
    held = switch(registry, locks, upstreams, expect=codeb_state.digest(BLUE_ACTIVE), extra=extra, tool=tool)
    assert held.returncode == codeb_state.EXIT_LOCKED
    assert audit_rows(audit_db) == [], "a refused switch writes no audit row"
    assert json.loads(log.read_text())["releases"][1]["contract_state"] == "pending", "and cancels nothing"

    run("unlock", *lock)
    done = switch(registry, locks, upstreams, expect=codeb_state.digest(BLUE_ACTIVE), extra=extra, tool=tool)
    assert done.returncode == 0, done.stderr
    assert (upstreams / "app.active").read_text() == "127.0.0.1:4001\n"
    rows = audit_rows(audit_db)
    assert [(r["tool"], r["outcome"], r["source"], r["actor"]) for r in rows] == [
        ("rollback", "allowed", "cli", "ssh root from me@here")
    ]
    assert AuditLog(str(audit_db)).verify() is None and audit_db.stat().st_mode & 0o777 == 0o600
    assert [r["contract_state"] for r in json.loads(log.read_text())["releases"]] == [None, "cancelled"]
    assert "release 2's contract step cancelled" in done.stdout
    assert list(locks.iterdir()) == []


def test_switch_without_the_api_installed_still_switches_and_writes_no_row(tmp_path):
    registry, locks, upstreams = setup(tmp_path)
    _, extra = fold_args(tmp_path, api_python=tmp_path / "no-venv" / "python")
    done = switch(
        registry, locks, upstreams, expect=codeb_state.digest(BLUE_ACTIVE), extra=extra, tool=installed(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert (upstreams / "app.active").read_text() == "127.0.0.1:4001\n"
    assert not (tmp_path / "audit.db").exists()


def test_the_installed_tool_reports_the_digest_the_controller_expects(tmp_path):
    registry, _, _ = setup(tmp_path)
    args = ["snapshot", "--registry", str(registry), "--project", "app", "--env", "production"]
    found = run(*args, "--podman", str(tmp_path / "no-podman"), tool=installed(tmp_path))
    assert json.loads(found.stdout)["tool"] == registry_ops.TOOL_DIGEST


def test_snapshot_carries_the_release_log_when_asked(tmp_path):
    registry, _, _ = setup(tmp_path)
    log, _ = fold_args(tmp_path)
    base = ["snapshot", "--registry", str(registry), "--project", "app", "--env", "production"]
    base += ["--podman", str(tmp_path / "no-podman")]
    assert "releases" not in json.loads(run(*base).stdout)
    found = json.loads(run(*base, "--releases", str(log)).stdout)
    assert found["releases"] == json.loads(log.read_text())
    assert json.loads(run(*base, "--releases", str(tmp_path / "none.json")).stdout)["releases"] is None


def test_a_switch_cancels_contracts_with_codeb_releases_in_the_codeb_directory_it_is_installed_under():
    from codeb_infra.commands import state as state_commands

    line = str(
        state_commands.switch(
            "/opt/codeb/bin/codeb-state",
            registry="/opt/codeb/registry",
            locks="/opt/codeb/locks",
            project="shop",
            env="production",
            holder="rollback by test",
            wait=0,
            break_lock=False,
            expect="x",
            record={},
            pointers=[],
            cancel=state_commands.SwitchCancel(tool="/srv/codeb/bin/codeb-releases", numbers=(3, 4)),
        )
    )
    assert "--releases-tool /srv/codeb/bin/codeb-releases --releases-root /srv/codeb" in line, line
    assert "--cancel-contract 3 --cancel-contract 4" in line, line


def systemd_on_path(tmp_path):
    """`systemctl` and `systemd-run` stand-ins (no systemd runs in a unit test; the sandbox's
    test_watch.py runs the real one) that append their arguments to calls.log."""
    bin_dir, calls = tmp_path / "fake-bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in ("systemctl", "systemd-run"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n')
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}, calls


def test_a_promotes_switch_starts_its_watch_in_place_of_any_earlier_one_once_switched(tmp_path):
    registry, locks, upstreams = setup(tmp_path)
    env, calls = systemd_on_path(tmp_path)
    watch_tool, spec_path = tmp_path / "codeb-watch", tmp_path / "watch" / "app.production.json"
    watch_tool.write_text("")
    spec = {"project": "app", "rollback": {"to": "blue"}}
    extra = ["--watch-tool", str(watch_tool), "--watch-unit", "codeb-watch-app-production"]
    extra += ["--watch-spec-path", str(spec_path), "--watch-spec", b64(spec)]

    stale = switch(registry, locks, upstreams, expect=codeb_state.digest(GREEN_ACTIVE), extra=extra, env=env)
    assert stale.returncode == codeb_state.EXIT_CONFLICT
    assert not calls.exists() and not spec_path.exists(), "a refused switch starts no watch"

    done = switch(registry, locks, upstreams, expect=codeb_state.digest(BLUE_ACTIVE), extra=extra, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(spec_path.read_text()) == spec and spec_path.stat().st_mode & 0o777 == 0o644
    lines = calls.read_text().splitlines()
    assert lines[:2] == [
        "systemctl stop codeb-watch-app-production.service",
        "systemctl reset-failed codeb-watch-app-production.service",
    ], "an earlier watch of the same project/env is stopped first"
    assert lines[2] == (
        "systemd-run --quiet --collect --unit codeb-watch-app-production --description codeb watch of a promoted"
        f" release python3 {watch_tool} run --spec {spec_path}"
    )
    assert list(locks.iterdir()) == []

    watch_tool.unlink()
    again = switch(
        registry, locks, upstreams, expect=codeb_state.digest(GREEN_ACTIVE), record=BLUE_ACTIVE, extra=extra, env=env
    )
    assert again.returncode == 0 and codeb_state.WATCH_MISSING in again.stderr
    assert len(calls.read_text().splitlines()) == 5, "no systemd-run without codeb-watch installed"
