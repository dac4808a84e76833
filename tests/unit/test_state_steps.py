"""codeb-state steps and write, run as the real program installed in a temp bin directory (with
the audit log's module beside it), with plans made by the command builders the deploy uses."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pyinfra.api import StringCommand

from codeb_infra.api.audit import AuditLog
from codeb_infra.commands import command, quoted
from codeb_infra.commands import state as state_commands
from codeb_infra.operations import registry as registry_ops
from codeb_infra.remote import codeb_state

ENTRY = {"actor": "ssh root from me@here", "tool": "deploy_project", "project": "app", "env": "production"}


def installed(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(codeb_state.__file__, bin_dir / "codeb-state")
    shutil.copy(registry_ops.AUDIT_SOURCE, bin_dir / codeb_state.AUDIT_MODULE)
    # A tool beside codeb-state that says which process ran it.
    (bin_dir / "codeb-probe").write_text(
        "import os, sys\n"
        "def main(argv):\n"
        "    open(argv[0], 'a').write(f'{os.getpid()} {sys.argv[1]}\\n')\n"
        "    return int(argv[1])\n"
    )
    return bin_dir / "codeb-state"


def sh(text: str) -> StringCommand:
    return command("sh", "-c", quoted(text))


def steps_command(tool: Path, tmp_path: Path, plan: state_commands.StepsPlan, holder: str = "deploy by test") -> str:
    audit = state_commands.SwitchAudit(python=sys.executable, database=str(tmp_path / "audit.db"), entry=ENTRY)
    built = state_commands.steps(
        str(tool),
        locks=str(tmp_path / "locks"),
        project="app",
        env="production",
        holder=holder,
        wait=0,
        break_lock=False,
        plan=plan,
        audit=audit,
    )
    return built.get_raw_value().replace("python3 ", f"{sys.executable} ", 1)


def run(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(text, shell=True, capture_output=True, text=True, timeout=30)


def probe(tool: Path, out: Path, code: int) -> StringCommand:
    return command("python3", quoted(str(tool.parent / "codeb-probe")), quoted(str(out)), str(code))


def test_steps_run_in_order_under_the_lock_and_tools_beside_it_run_in_its_own_process(tmp_path):
    tool = installed(tmp_path)
    out, written = tmp_path / "probe.txt", tmp_path / "site" / "unit.container"
    plan = state_commands.StepsPlan(
        steps=(
            probe(tool, out, 0),
            state_commands.write(str(tool), path=str(written), content="[Unit]\n", mode="640", dir_mode="700"),
            sh(f"test -e {tmp_path}/locks/app.production.lock && echo locked >> {out}"),
        ),
        on_failure=((range(0, 3), sh(f"echo failure-step >> {out}")),),
        failure="deploy failed",
    )
    done = run(steps_command(tool, tmp_path, plan))
    assert done.returncode == 0, done.stderr
    first, second = out.read_text().splitlines()
    assert first.split()[1] == "steps", "codeb-probe ran inside `codeb-state steps`, not in a new interpreter"
    assert second == "locked", "the steps ran while the lock was held"
    assert written.read_text() == "[Unit]\n" and written.stat().st_mode & 0o777 == 0o640
    assert written.parent.stat().st_mode & 0o777 == 0o700
    assert list((tmp_path / "locks").iterdir()) == [], "unlocked"
    (row,) = AuditLog(str(tmp_path / "audit.db")).rows()
    assert row["outcome"] == "allowed" and row["tool"] == "deploy_project"

    again = run(steps_command(tool, tmp_path, plan))
    assert f"{written} is up to date" in again.stdout, "an unchanged file is left alone"


def test_a_failed_step_stops_the_rest_runs_its_failure_steps_and_says_the_failure_last(tmp_path):
    tool = installed(tmp_path)
    out = tmp_path / "out.txt"
    plan = state_commands.StepsPlan(
        steps=(sh(f"echo one >> {out}"), probe(tool, out, 7), sh(f"echo never >> {out}")),
        on_failure=(
            (range(0, 3), sh(f"echo 0-2 >> {out}")),
            (range(1, 2), sh(f"echo 1 >> {out}")),
            (range(2, 3), sh(f"echo 2 >> {out}")),
            (range(0, 1), sh(f"echo 0 >> {out}")),
        ),
        failure="deploy of x failed; the active slot and its traffic are unchanged",
    )
    done = run(steps_command(tool, tmp_path, plan))
    assert done.returncode == 1
    lines = out.read_text().splitlines()
    assert lines[0] == "one" and lines[1].endswith(" steps") and lines[2:] == ["0-2", "1"]
    assert done.stderr.strip().splitlines()[-1] == plan.failure
    assert list((tmp_path / "locks").iterdir()) == []
    assert [r["outcome"] for r in AuditLog(str(tmp_path / "audit.db")).rows()] == ["failed"]


def test_a_held_lock_runs_nothing_and_names_its_holder(tmp_path):
    tool = installed(tmp_path)
    out = tmp_path / "out.txt"
    (tmp_path / "locks").mkdir()
    lock = tmp_path / "locks" / "app.production.lock"
    lock.write_text(json.dumps({"holder": "deploy by someone else", "since": "2026-01-01T00:00:00+00:00"}))
    plan = state_commands.StepsPlan(steps=(sh(f"echo ran >> {out}"),), on_failure=(), failure="failed")
    done = run(steps_command(tool, tmp_path, plan))
    assert done.returncode == codeb_state.EXIT_LOCKED
    assert f"{codeb_state.LOCK_HELD}app/production is locked by deploy by someone else" in done.stderr
    assert not out.exists() and lock.exists()
    assert not (tmp_path / "audit.db").exists(), "a refused change writes no audit row"


def test_steps_go_on_to_the_end_once_the_controller_that_reads_them_is_gone(tmp_path):
    tool = installed(tmp_path)
    out = tmp_path / "out.txt"
    plan = state_commands.StepsPlan(
        steps=(sh("sleep 0.5; echo talking; echo to-stderr >&2"), probe(tool, out, 0), sh(f"echo last >> {out}")),
        on_failure=(),
        failure="failed",
    )
    process = subprocess.Popen(
        steps_command(tool, tmp_path, plan), shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    assert process.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while not (out.exists() and out.read_text().endswith("last\n")):
        assert time.monotonic() < deadline, "the steps after the lost output did not run"
        time.sleep(0.05)
    assert list((tmp_path / "locks").iterdir()) == []


def test_a_plan_made_from_records_that_changed_meanwhile_runs_nothing(tmp_path):
    """The run waited for the lock while another finished: its plan is stale, nothing is done
    and the line says so (the controller plans again)."""
    tool = installed(tmp_path)
    registry, out = tmp_path / "registry", tmp_path / "out.txt"
    registry.mkdir()
    (registry / "slots.json").write_text(json.dumps({"slots": {"app": {"production": {"blue": {"state": "active"}}}}}))
    planned_from = codeb_state.digest({"blue": {"state": "active"}})

    def plan(expect: str) -> state_commands.StepsPlan:
        return state_commands.StepsPlan(
            steps=(sh(f"echo ran >> {out}"),),
            on_failure=(),
            failure="failed",
            registry=str(registry),
            expect=(("slots.json", "slots", expect),),
        )

    stale = run(steps_command(tool, tmp_path, plan(codeb_state.digest(None))))
    assert stale.returncode == codeb_state.EXIT_CONFLICT
    assert f"{codeb_state.CHANGED_MEANWHILE}app/production: slots.json changed" in stale.stderr
    assert not out.exists() and not (tmp_path / "audit.db").exists()
    assert list((tmp_path / "locks").iterdir()) == []
    assert run(steps_command(tool, tmp_path, plan(planned_from))).returncode == 0 and out.exists()


def test_a_step_of_a_tool_beside_it_that_raises_fails_in_one_line(tmp_path):
    tool = installed(tmp_path)
    (tool.parent / "codeb-probe").write_text("def main(argv):\n    raise OSError(28, 'No space left on device')\n")
    plan = state_commands.StepsPlan(
        steps=(probe(tool, tmp_path / "x", 0),), on_failure=(), failure="deploy failed; nothing changed"
    )
    done = run(steps_command(tool, tmp_path, plan))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "codeb-probe " + str(tmp_path / "x") + ": [Errno 28] No space left on device",
        plan.failure,
    ]
