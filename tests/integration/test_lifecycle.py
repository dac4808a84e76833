"""Deploy, preview, promote, rollback and cleanup on real podman and Caddy."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.stack import ROOT

pytestmark = pytest.mark.integration


def running_ids(stack, project):
    return {
        name: (row["Id"], row["State"]["StartedAt"], row["RestartCount"])
        for name, row in stack.containers(project).items()
    }


def assert_consistent(stack, project, active, serving):
    """status, slots.json, podman and Caddy tell the same story."""
    status = stack.status(project)
    assert status["active_slot"] == active
    recorded = stack.slots_json()["slots"][project]["production"]
    live = stack.containers(project)
    for slot, info in status["slots"].items():
        assert info["state"] == recorded[slot]["state"]
        name = f"{project}-production-{slot}"
        if info["state"] in ("active", "deployed", "grace"):
            assert live[name]["State"]["Running"], name
            assert live[name]["ImageName"] == info["image"] == recorded[slot]["release"]["image"]
            assert live[name]["Config"]["Labels"]["codeb.slot"] == slot
            assert f"{info['port']}" in json.dumps(live[name]["HostConfig"]["PortBindings"])
        if info["state"] == "empty":
            assert name not in live
    assert stack.serves(project) == serving


def test_full_lifecycle(stack, project, images):
    first = stack.codeb("deploy", project, "--image", images["v1"])
    assert f"http://{project}-preview.codeb.test" in first.stdout
    assert stack.serves(project, preview=True) == "v1"
    stack.codeb("promote", project)
    assert_consistent(stack, project, "blue", "v1")

    second = stack.pyinfra("deploy", project=project, image=images["v2"])
    assert f"preview: http://{project}-preview.codeb.test -> green" in second.stdout
    assert stack.serves(project, preview=True) == "v2"
    assert stack.serves(project) == "v1"
    assert stack.status(project)["slots"]["green"]["state"] == "deployed"

    stack.pyinfra("promote", project=project)
    assert_consistent(stack, project, "green", "v2")
    assert stack.serves(project, preview=True) == "v1"
    before = running_ids(stack, project)

    stack.codeb("rollback", project)
    assert_consistent(stack, project, "blue", "v1")
    assert running_ids(stack, project) == before, "rollback must not create or restart containers"
    assert stack.status(project)["grace_until"] is not None

    # cleanup keeps a slot whose grace period is running...
    kept = stack.codeb("cleanup", project)
    assert "no change" in kept.stdout
    assert f"{project}-production-green" in stack.containers(project)
    # ...and removes it once the period ended (a short grace for the test)
    stack.codeb("rollback", project, "--to", "green", host_data={"grace_hours": 0.0005})
    assert_consistent(stack, project, "green", "v2")
    time.sleep(2.5)
    stack.codeb("cleanup", project)
    assert set(stack.containers(project)) == {f"{project}-production-green"}
    assert_consistent(stack, project, "green", "v2")
    assert stack.status(project)["slots"]["blue"]["state"] == "empty"


def test_failed_health_check_never_promotes(stack, project, images):
    stack.codeb("deploy", project, "--image", images["v1"])
    stack.codeb("promote", project)
    before = stack.slots_json()["slots"][project]["production"]["blue"]

    failed = stack.codeb("deploy", project, "--image", images["v3"], check=False)
    output = failed.stdout
    assert failed.returncode != 0
    assert "health check failed" in output and "gave no 2xx" in output
    assert "last log lines of" in output
    assert stack.serves(project) == "v1"
    recorded = stack.slots_json()["slots"][project]["production"]
    assert recorded["blue"] == before, "the active slot's record is untouched"
    assert recorded["green"]["state"] == "failed"
    refused = stack.codeb("promote", project, check=False)
    assert refused.returncode != 0 and "cannot promote green (FAILED)" in refused.stdout
    assert stack.serves(project) == "v1"
    # the lock was released: a good deploy goes through right away
    stack.codeb("deploy", project, "--image", images["v2"])
    assert stack.serves(project, preview=True) == "v2"
    assert stack.serves(project) == "v1"


@pytest.mark.parametrize(
    "args, message",
    [
        (["deploy", "../x", "--image", "localhost/a:v1"], "invalid project name '../x'"),
        (["deploy", "a;rm -rf /", "--image", "localhost/a:v1"], "invalid project name"),
        (["deploy", "MyApp", "--image", "localhost/a:v1"], "invalid project name 'MyApp'"),
        (["deploy", "a" * 64, "--image", "localhost/a:v1"], "invalid project name"),
        (["deploy", "ok", "--env", "prod", "--image", "localhost/a:v1"], "invalid environment 'prod'"),
        (["deploy", "ok", "--image", "localhost/a b:v1"], "invalid image"),
        (["deploy", "ok", "--image", "localhost/a:v1", "--container-port", "0"], "invalid container port 0"),
        (["deploy", "ok", "--image", "localhost/a:v1", "--container-port", "70000"], "invalid container port 70000"),
    ],
)
def test_bad_input_is_refused_before_any_command(stack, args, message):
    result = stack.codeb(*args, check=False)
    assert result.returncode == 2
    assert message in result.stdout and "nothing was changed" in result.stdout
    ssot = stack.directory / "codeb" / "registry" / "ssot.json"
    if ssot.exists():  # other tests of this module wrote their own projects there
        projects = json.loads(ssot.read_text())["projects"]
        assert not {"ok", "../x", "MyApp", "a" * 64} & set(projects), projects


def test_bad_input_through_pyinfra_is_refused_too(stack):
    marker = stack.directory / "untouched"
    result = stack.pyinfra("deploy", check=False, project="-rf", image="localhost/a:v1", codeb_dir=str(marker))
    assert result.returncode != 0
    assert "invalid project name '-rf'" in result.stdout
    assert not marker.exists(), "no remote command may run for bad input"


def test_unknown_project_and_nothing_in_grace(stack, project, images):
    unknown = stack.codeb("promote", "nosuchproject", check=False)
    assert unknown.returncode == 2 and "unknown project nosuchproject/production" in unknown.stdout
    unknown = stack.codeb("rollback", "nosuchproject", check=False)
    assert unknown.returncode == 2 and "unknown project nosuchproject/production" in unknown.stdout
    stack.codeb("deploy", project, "--image", images["v1"])
    stack.codeb("promote", project)
    nothing = stack.codeb("rollback", project, check=False)
    assert nothing.returncode == 2
    assert f"{project}/production: cannot roll back to green (EMPTY): nothing is in its grace period" in nothing.stdout


def test_every_run_twice_changes_nothing_the_second_time(stack, project, images):
    steps = [
        ("deploy", {"image": images["v1"]}),
        ("promote", {}),
        ("deploy", {"image": images["v2"]}),
        ("promote", {}),
        ("rollback", {"to": "blue"}),
        ("cleanup", {"force": "true"}),
    ]
    for script, data in steps:
        first = stack.pyinfra(script, project=project, **data)
        assert "Grand total" in first.stdout
        again = stack.pyinfra(script, project=project, **data)
        ops = [line for line in again.stdout.splitlines() if "[@local] Success" in line]
        assert ops == [], f"second {script} changed something:\n{again.stdout}"
        assert stack.codeb(script, project, *_cli_args(data)).stdout.strip().endswith("no change")


def _cli_args(data):
    args = []
    for key, value in data.items():
        if key == "force":
            args.append("--force")
        else:
            args += [f"--{key}", value]
    return args


def test_a_deploy_during_a_running_deploy_gets_the_lock_error(stack, project, images):
    """The second run starts while the first provably holds the lock: a deploy whose health check
    keeps failing (v3 never answers 2xx) holds it for health_timeout seconds. (A promote then
    would already stop at its plan: the slot it would switch to is being replaced.)"""
    stack.codeb("deploy", project, "--image", images["v1"])
    stack.codeb("promote", project)
    stack.codeb("deploy", project, "--image", images["v2"])
    before = stack.slots_json()["slots"][project]["production"]
    slow = subprocess.Popen(
        _command(stack, "cli", "deploy", project, image=images["v3"]),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (held := _read_lock(stack, project)) is None:
            assert slow.poll() is None and time.monotonic() < deadline, "the deploy never took the lock"
            time.sleep(0.05)
        assert held["holder"].startswith(f"deploy {images['v3']} by ") and f" pid {slow.pid} " in held["holder"], held
        loser = stack.codeb("deploy", project, "--image", images["v2"], check=False)
        assert slow.poll() is None, "the first deploy must still hold the lock while the second ran"
        assert_locked_out(loser, held["holder"], held["since"])
        assert stack.slots_json()["slots"][project]["production"]["blue"] == before["blue"]
        assert stack.serves(project) == "v1"
    finally:
        output, _ = slow.communicate(timeout=120)
    assert slow.returncode != 0 and "health check failed" in output, output
    assert not lock_file(stack, project).exists(), "the failed deploy released its lock"
    assert stack.serves(project) == "v1"


def test_a_rerun_repairs_what_an_interrupted_run_left(stack, project, images):
    """Pointer and site files lost (a crash between steps, a hand edit): the same command repairs them."""
    stack.codeb("deploy", project, "--image", images["v1"])
    stack.codeb("promote", project)
    upstreams = stack.directory / "caddy" / "upstreams"
    (upstreams / f"{project}-production.active").unlink()
    assert stack.serves(project).startswith("HTTP 5"), "without its pointer the domain has no upstream"
    assert stack.status(project)["serving"]["active"] is None
    repaired = stack.codeb("promote", project)
    assert "change" in repaired.stdout and stack.serves(project) == "v1"

    site = stack.caddy.site_path(f"{project}-production")
    site.unlink()
    stack.caddy.reload()
    with contextlib.suppress(ConnectionRefusedError):  # no site left at all: Caddy closed the port
        assert stack.serves(project) != "v1"
    stack.codeb("deploy", project, "--image", images["v1"])
    assert site.exists() and stack.serves(project) == "v1"


def test_staging_and_production_are_separate(stack, project, images):
    stack.codeb("deploy", project, "--image", images["v1"], "--env", "staging")
    stack.codeb("promote", project, "--env", "staging")
    stack.codeb("deploy", project, "--image", images["v2"])
    stack.codeb("promote", project)
    assert stack.get(f"{project}-staging.codeb.test")[1] == "v1"
    assert stack.serves(project) == "v2"
    ports = json.loads((stack.directory / "codeb" / "registry" / "ssot.json").read_text())["projects"][project]
    assert 4500 <= ports["staging"]["ports"]["blue"] <= 4999 and 4000 <= ports["production"]["ports"]["blue"] <= 4499


def test_the_project_env_file_reaches_the_container_and_a_change_redeploys(stack, project, images):
    env_file = stack.directory / "codeb" / "env" / project / "production.env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text("GREETING=hello\n")
    env_file.chmod(0o600)
    stack.codeb("deploy", project, "--image", images["v1"])
    inspected = stack.containers(project)[f"{project}-production-blue"]
    assert "GREETING=hello" in inspected["Config"]["Env"]
    assert "hello" not in json.dumps(inspected["Config"]["Labels"]), "values never land in labels"
    assert "no change" in stack.codeb("deploy", project, "--image", images["v1"]).stdout
    env_file.write_text("GREETING=bonjour\n")
    stack.codeb("deploy", project, "--image", images["v1"])
    assert "GREETING=bonjour" in stack.containers(project)[f"{project}-production-blue"]["Config"]["Env"]


def test_remove_takes_a_project_off_and_needs_force_while_it_is_live(stack, project, images):
    stack.codeb("deploy", project, "--image", images["v1"])
    stack.codeb("promote", project)
    refused = stack.codeb("remove", project, check=False)
    assert refused.returncode == 2 and "pass force=true" in refused.stdout
    assert stack.serves(project) == "v1"
    stack.pyinfra("remove", project=project, force="true")
    assert stack.containers(project) == {}
    assert not stack.caddy.site_path(f"{project}-production").exists()
    assert not list((stack.directory / "caddy" / "upstreams").glob(f"{project}-*"))
    registry = stack.directory / "codeb" / "registry"
    assert project not in (registry / "ssot.json").read_text() + (registry / "slots.json").read_text()
    assert stack.codeb("remove", project).stdout.strip().endswith("no change")


def test_custom_domains_are_served_and_change_without_a_redeploy(stack, project, images):
    stack.codeb("deploy", project, "--image", images["v1"], "--alias", f"www.{project}.example")
    stack.codeb("promote", project)
    before = {name: row["Id"] for name, row in stack.containers(project).items()}
    assert stack.get(f"www.{project}.example")[1] == "v1"
    status = stack.status(project)
    assert status["aliases"] == [f"www.{project}.example"]
    assert {"name": f"www.{project}.example", "type": "A", "value": None} in status["dns_to_create"]
    # a second alias: same release, so only the routing changes (no container is created)
    stack.pyinfra(
        "deploy", project=project, image=images["v1"], aliases=f"www.{project}.example,shop.{project}.example"
    )
    assert stack.get(f"shop.{project}.example")[1] == "v1"
    assert {name: row["Id"] for name, row in stack.containers(project).items()} == before
    assert stack.slots_json()["slots"][project]["production"]["green"]["state"] == "empty"
    taken = stack.codeb(
        "deploy", "other" + project[1:], "--image", images["v1"], "--alias", f"shop.{project}.example", check=False
    )
    assert (
        taken.returncode == 2
        and f"domain shop.{project}.example already belongs to {project}/production" in taken.stdout
    )


STATE_TOOL = Path(__file__).resolve().parents[2] / "codeb_infra" / "remote" / "codeb_state.py"
HOLDER = "deploy by ops@elsewhere pid 4242"
# The `codeb` command ends a run refused a held lock with exit 4 (cli/errors.py); pyinfra's own CLI,
# running a deploy script, ends it as a failed operation (exit 1).
LOCKED_EXIT = 4


def hold_lock(stack, project: str, holder: str = HOLDER) -> None:
    """Take the project's lock with the server-side tool itself, as another run would hold it."""
    subprocess.run(
        [
            sys.executable,
            str(STATE_TOOL),
            "lock",
            "--dir",
            str(stack.directory / "codeb" / "locks"),
            "--project",
            project,
            "--env",
            "production",
            "--holder",
            holder,
        ],
        check=True,
    )


def release_lock(stack, project: str, holder: str = HOLDER) -> None:
    subprocess.run(
        [
            sys.executable,
            str(STATE_TOOL),
            "unlock",
            "--dir",
            str(stack.directory / "codeb" / "locks"),
            "--project",
            project,
            "--env",
            "production",
            "--holder",
            holder,
        ],
        check=True,
    )


def lock_file(stack, project: str) -> Path:
    return stack.directory / "codeb" / "locks" / f"{project}.production.lock"


def _read_lock(stack, project: str) -> dict | None:
    """The lock's record, or None while there is none (or it is being written)."""
    try:
        return json.loads(lock_file(stack, project).read_text())
    except (FileNotFoundError, ValueError):
        return None


def assert_locked_out(result, holder: str, since: str, *, status: int = LOCKED_EXIT) -> None:
    assert result.returncode == status, result.stdout
    assert f"is locked by {holder} since {since}" in result.stdout, result.stdout


def test_a_run_meets_a_held_lock_and_changes_nothing(stack, project, images):
    stack.codeb("deploy", project, "--image", images["v1"])
    stack.codeb("promote", project)
    stack.codeb("deploy", project, "--image", images["v2"])
    before = stack.slots_json()
    hold_lock(stack, project)
    since = json.loads(lock_file(stack, project).read_text())["since"]

    assert_locked_out(stack.codeb("promote", project, check=False), HOLDER, since)
    assert_locked_out(stack.pyinfra("promote", project=project, check=False), HOLDER, since, status=1)
    assert stack.slots_json() == before and stack.serves(project) == "v1"
    assert json.loads(lock_file(stack, project).read_text())["holder"] == HOLDER, "the other run's lock stays"

    # --lock-wait: waits while the other run holds the lock, then goes through
    for run in ("cli", "deploy script"):
        waiting = subprocess.Popen(
            _command(stack, run, "promote" if run == "cli" else "rollback", project, lock_wait="20"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(4)
        assert waiting.poll() is None, "the waiting run returned while the lock was held"
        released = time.monotonic()
        release_lock(stack, project)
        output, _ = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, output
        print(f"{run}: lock released -> run done in {time.monotonic() - released:.1f}s")
        assert not lock_file(stack, project).exists()
        hold_lock(stack, project)
    assert stack.serves(project) == "v1", "promoted to v2 by the CLI, rolled back by the deploy script"

    # --break-lock: a lock left by a run that died is broken, and the run goes through
    stack.codeb("rollback", project, "--break-lock")
    assert stack.serves(project) == "v2" and not lock_file(stack, project).exists()
    hold_lock(stack, project)
    stack.pyinfra("rollback", project=project, break_lock="true")
    assert stack.serves(project) == "v1" and not lock_file(stack, project).exists()


def _command(stack, run: str, action: str, project: str, **options: str) -> list[str]:
    data = stack.data(**(options if run == "deploy script" else {}))
    data_args = [part for k, v in data.items() for part in ("--data", f"{k}={v}")]
    if run == "cli":
        flags = [part for k, v in options.items() for part in (f"--{k.replace('_', '-')}", v)]
        return [sys.executable, "-m", "codeb_infra.cli", action, project, *flags, "-i", "@local", *data_args]
    return [
        sys.executable,
        "-m",
        "pyinfra",
        "-y",
        "@local",
        f"deploys/{action}.py",
        "--data",
        f"project={project}",
        *data_args,
    ]
