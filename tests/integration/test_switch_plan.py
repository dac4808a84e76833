"""The switch as one server-side step on real podman and Caddy: a lock held by another run ends
the promote with exit 4 naming it, --lock-wait waits it out, --break-lock breaks it; --dry and
--expect-no-changes change nothing and say what the run then changes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from codeb_infra.remote import codeb_state

pytestmark = pytest.mark.integration


def lock_tool(stack, action, project, holder):
    tool = [
        sys.executable,
        codeb_state.__file__,
        action,
        "--dir",
        str(stack.directory / "codeb" / "locks"),
        "--project",
        project,
        "--env",
        "production",
        "--holder",
        holder,
    ]
    return subprocess.run(tool, capture_output=True, text=True, check=False)


def test_a_held_lock_exits_4_naming_it_and_can_be_waited_for_or_broken(stack, project, images):
    stack.codeb("deploy", project, "--image", images["v1"])
    assert lock_tool(stack, "lock", project, "deploy by ci #7").returncode == 0
    held = stack.codeb("promote", project, check=False)
    assert held.returncode == 4, held.stdout
    assert f"{project}/production is locked by deploy by ci #7 since 20" in held.stdout
    assert stack.status(project)["active_slot"] is None, "nothing switched under another run's lock"

    release = threading.Timer(1.0, lambda: lock_tool(stack, "unlock", project, "deploy by ci #7"))
    release.start()
    stack.codeb("promote", project, "--lock-wait", "20")
    release.join()
    assert stack.status(project)["active_slot"] == "blue" and stack.serves(project) == "v1"

    stack.codeb("deploy", project, "--image", images["v2"])
    assert lock_tool(stack, "lock", project, "a run that died").returncode == 0
    stack.codeb("promote", project, "--break-lock")
    assert stack.serves(project) == "v2"
    assert not list((stack.directory / "codeb" / "locks").glob(f"{project}.*")), "the switch released its lock"


def test_dry_promote_changes_nothing_and_names_the_pointer_move(stack, project, images):
    stack.codeb("deploy", project, "--image", images["v1"])
    slots_before = json.dumps(stack.slots_json())
    pending = stack.codeb("promote", project, "--expect-no-changes", check=False)
    assert pending.returncode == 3, pending.stdout
    out = stack.codeb("promote", project, "--dry", "--json").stdout
    plan = json.loads(out[out.index("{") :])
    assert json.dumps(stack.slots_json()) == slots_before and stack.status(project)["serving"]["active"] is None
    [move] = [c for c in plan["plans"][0]["changes"] if c["what"] == "pointer" and c["target"].endswith(".active")]
    stack.codeb("promote", project)
    assert stack.status(project)["serving"]["active"] == move["new"] and stack.serves(project) == "v1"
    assert stack.codeb("promote", project, "--expect-no-changes").returncode == 0
