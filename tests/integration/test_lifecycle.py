"""Deploy, preview, promote, rollback and cleanup on real podman and Caddy."""

from __future__ import annotations

import contextlib
import json
import time

import pytest

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
    assert (
        not (stack.directory / "codeb" / "registry" / "ssot.json").exists()
        or "ok" not in (stack.directory / "codeb" / "registry" / "ssot.json").read_text()
    )


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


def test_concurrent_promotes_one_wins_the_other_gets_the_lock_error(stack, project, images):
    import subprocess
    import sys

    stack.codeb("deploy", project, "--image", images["v1"])
    stack.codeb("promote", project)
    stack.codeb("deploy", project, "--image", images["v2"])
    data = [p for k, v in stack.data().items() for p in ("--data", f"{k}={v}")]
    command = [sys.executable, "-m", "codeb_infra.cli", "promote", project, "-i", "@local", *data]
    runs = [
        subprocess.Popen(command, cwd=stack.directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [(p.wait(timeout=120), p.stdout.read()) for p in runs]
    codes = sorted(code for code, _ in outputs)
    assert codes[0] == 0 and codes[1] != 0, outputs
    loser = next(out for code, out in outputs if code != 0)
    assert "is locked by promote by" in loser or "changed since this run read it" in loser, loser
    recorded = stack.slots_json()["slots"][project]["production"]
    assert (recorded["blue"]["state"], recorded["green"]["state"]) == ("grace", "active")
    assert stack.serves(project) == "v2"


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
