"""Faults the app server survives, each measured on the sandbox: Caddy SIGKILLed, the registry's
filesystem full during a deploy, ten projects deployed at once. What was lost (must be nothing)
and how long recovery took are printed; README's fault table holds the figures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from codeb_infra.controller import probe
from codeb_infra.sandbox import SandboxInfo
from tests.sandbox.conftest import Bootstrapped, must
from tests.sandbox.test_e2e import ROOT, codeb, ok
from tests.support.images import TURNING_HEALTH_PATH, build_test_image, build_turning_image, ensure_images
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

RUN = uuid.uuid4().hex[:5]
REGISTRY = "/opt/codeb/registry"


@dataclass
class Live:
    info: SandboxInfo
    project: str
    root_pem: str

    @property
    def domain(self) -> str:
        return f"{self.project}.codeb.test"

    def serves(self, domain: str | None = None) -> str:
        try:
            status, body = probe.get(
                domain or self.domain,
                address="127.0.0.1",
                port=self.info.servers["app"].https_port,
                https=True,
                root_pem=self.root_pem,
                timeout=3,
            )
        except OSError as error:
            return f"{type(error).__name__}"
        return body if status == 200 else f"HTTP {status}"

    def pointer(self) -> str:
        return must(ssh(self.info, "app", f"cat /etc/caddy/upstreams/{self.project}-production.active")).strip()


@pytest.fixture(scope="module")
def live(bootstrapped: Bootstrapped) -> Iterator[Live]:
    """A project of this run's own, v1 live and v2 deployed in its preview slot."""
    info, images = bootstrapped.info, ensure_images()
    project = f"fault-{RUN}"
    ok(codeb(info, "deploy", project, "--image", images["v1"], "--push"))
    ok(codeb(info, "promote", project))
    ok(codeb(info, "deploy", project, "--image", images["v2"], "--push"))
    root = must(ssh(info, "app", f"cat {probe.CADDY_LOCAL_ROOT}"))
    found = Live(info, project, root)
    assert found.serves() == "v1"
    yield found
    codeb(info, "remove", project, "--force")


def wait_until(what: str, check, timeout: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_caddy_killed_is_restarted_and_serves_the_same_slot(live: Live) -> None:
    info = live.info
    pointer = live.pointer()
    restarts = int(must(ssh(info, "app", "systemctl show -p NRestarts --value caddy")).strip())
    killed = must(ssh(info, "app", "systemctl show -p MainPID --value caddy")).strip()
    must(ssh(info, "app", f"kill -KILL {killed}"))
    killed_at = time.monotonic()
    seconds = wait_until("the live slot serves again", lambda: live.serves() == "v1", timeout=60)
    after = int(must(ssh(info, "app", "systemctl show -p NRestarts --value caddy")).strip())
    print(
        f"\nCaddy SIGKILLed: the active slot served again after {time.monotonic() - killed_at:.2f}s "
        f"(restarts {restarts} -> {after})"
    )
    assert after == restarts + 1, "systemd restarted Caddy"
    assert must(ssh(info, "app", "systemctl show -p MainPID --value caddy")).strip() != killed
    assert live.pointer() == pointer, "the pointer is unchanged"
    assert live.serves(f"{live.project}-preview.codeb.test") == "v2"
    assert seconds < 30


def registry_files(info: SandboxInfo) -> dict[str, str]:
    return {name: must(ssh(info, "app", f"cat {REGISTRY}/{name}")) for name in ("ssot.json", "slots.json")}


def test_a_full_registry_filesystem_fails_the_deploy_and_keeps_everything(live: Live) -> None:
    """The registry moved onto a 1 MiB tmpfs, filled to the last byte; restored afterwards."""
    info, image = live.info, build_test_image("v4", "v4")
    before = registry_files(info)
    stash = f"/root/registry-{RUN}"
    must(
        ssh(
            info,
            "app",
            f"set -e; cp -a {REGISTRY} {stash}; mount -t tmpfs -o size=1m codeb-test-full {REGISTRY}; "
            f"cp -a {stash}/. {REGISTRY}/; "
            f"dd if=/dev/zero of={REGISTRY}/.filler bs=64k 2>/dev/null || true; "
            f"while head -c 512 /dev/zero >> {REGISTRY}/.filler 2>/dev/null; do :; done; "
            f"df -B1 --output=avail {REGISTRY} | tail -1",
        )
    )
    try:
        failed = codeb(info, "deploy", live.project, "--image", image, "--push")
        print(f"\ndeploy with the registry's filesystem full (exit {failed.returncode}):\n{failed.stdout[-1500:]}")
        assert failed.returncode != 0
        assert "No space left on device" in failed.stdout or "no space" in failed.stdout.lower(), failed.stdout[-3000:]
        now = registry_files(info)
        assert now == before, "the registry files are intact"
        for text in now.values():
            json.loads(text)
        assert live.serves() == "v1", "the active slot keeps serving"
        must(ssh(info, "app", f"rm -f {REGISTRY}/.filler"))
        again = ok(codeb(info, "deploy", live.project, "--image", image, "--push"))
        assert "preview" in again
        assert live.serves() == "v1" and live.serves(f"{live.project}-preview.codeb.test") == "v4"
        after = registry_files(info)
    finally:
        # Back onto the server's own filesystem, with whatever the registry holds now.
        must(
            ssh(
                info,
                "app",
                f"set -e; rm -f {REGISTRY}/.filler; cp -a {REGISTRY}/. {stash}/; umount {REGISTRY}; "
                f"cp -a {stash}/. {REGISTRY}/; rm -rf {stash}",
            )
        )
    assert registry_files(info) == after
    assert json.loads(after["slots.json"])["slots"][live.project]["production"]["green"]["release"]["image"] == image


def test_ten_projects_deployed_at_once_all_succeed_with_ports_of_their_own(live: Live) -> None:
    info, image = live.info, ensure_images()["v1"]  # the live project put the image on the server
    projects = [f"many{RUN}-{n}" for n in range(10)]

    def deploy(project: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "codeb_infra.cli", "deploy", project, "--image", image, "-i", str(info.inventory)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=len(projects)) as pool:
            results = list(pool.map(deploy, projects))
        seconds = time.monotonic() - started
        # New projects plan their ports from the ssot.json they read; two that read it at the same
        # time may pick the same free port: the registry write refuses the second one, and its
        # deploy plans again from the registry as it is then, by itself.
        failed = [
            (p, [line for line in r.stdout.splitlines() if "rror" in line or "failed" in line.lower()][-12:])
            for p, r in zip(projects, results, strict=True)
            if r.returncode != 0
        ]
        assert failed == [], failed
        replanned = sum(r.stdout.count("was taken meanwhile by another deploy") for r in results)
        print(
            f"\nten deploys of ten projects at once: all done after {seconds:.1f}s; {replanned} port clashes replanned"
        )
        ssot = json.loads(must(ssh(info, "app", f"cat {REGISTRY}/ssot.json")))["projects"]
        slots = json.loads(must(ssh(info, "app", f"cat {REGISTRY}/slots.json")))["slots"]
        assert set(projects) <= set(ssot) and set(projects) <= set(slots)
        ports = [port for entry in ssot.values() for env in entry.values() for port in env["ports"].values()]
        assert len(ports) == len(set(ports)), "no port is shared"
        published = must(ssh(info, "app", "podman ps --format '{{.Names}} {{.Ports}}'"))
        for project in projects:
            assert f"{project}-production-blue" in published
            assert slots[project]["production"]["blue"]["state"] == "deployed"
    finally:
        with ThreadPoolExecutor(max_workers=len(projects)) as pool:
            list(pool.map(lambda project: codeb(info, "remove", project, "--force"), projects))


def state_agrees(live: Live) -> dict:
    """registry (status --json), slots.json, containers, pointer and site tell one story."""
    info = live.info
    printed = ok(codeb(info, "status", live.project, "--json"))
    status = json.loads(printed[printed.index("{") :])
    recorded = json.loads(must(ssh(info, "app", f"cat {REGISTRY}/slots.json")))["slots"][live.project]["production"]
    active = status["active_slot"]
    assert recorded[active]["state"] == "active"
    port = status["slots"][active]["port"]
    assert live.pointer() == f"127.0.0.1:{port}"
    assert (
        must(ssh(info, "app", f"test -f /etc/caddy/sites/{live.project}-production.caddy && echo site")).strip()
        == "site"
    )
    for slot, entry in status["slots"].items():
        if entry["state"] in ("active", "deployed", "grace"):
            image = must(
                ssh(
                    info,
                    "app",
                    f"podman inspect --format '{{{{.ImageName}}}} {{{{.State.Running}}}}' "
                    f"{live.project}-production-{slot}",
                )
            ).split()
            assert image == [recorded[slot]["release"]["image"], "true"], (slot, image)
    assert ssh(info, "app", f"test -e /opt/codeb/locks/{live.project}.production.lock").returncode != 0, "lock left"
    return status


def killed_at(live: Live, command: list[str], point: str, reached) -> tuple[int, str]:
    """Start `codeb ...`, SIGKILL it once ``reached()`` is true; (its pid, seconds to the point)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "codeb_infra.cli", *command, "-i", str(live.info.inventory)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = time.monotonic()
    try:
        while not reached():
            assert process.poll() is None, f"{command[0]} ended before {point}:\n{process.stdout.read()[-2000:]}"
            assert time.monotonic() - started < 180, f"{point} never reached"
            time.sleep(0.1)
    finally:
        finished = process.poll() is not None
        process.kill()
        process.wait(timeout=30)
    assert not finished, f"{command[0]} had already finished at {point}: no kill mid-run"
    return process.pid, f"{time.monotonic() - started:.1f}"


def rerun(live: Live, pid: int, *command: str) -> str:
    """The same command again after the kill. The server-side step the dead controller started
    (`codeb-state steps` or `switch`) goes on to its end and releases the lock itself: a re-run
    that finds the lock still held is refused with the holder named, then waits for it with
    --lock-wait and converges, never needing --break-lock."""
    info = live.info
    lock = f"/opt/codeb/locks/{live.project}.production.lock"
    left = ssh(info, "app", f"cat {lock}").stdout
    if not left:
        ok(codeb(info, command[0], live.project, *command[1:]))
        return "its lock was already released; the re-run converged"
    assert f" pid {pid} " in left, left
    refused = codeb(info, command[0], live.project, *command[1:])
    if refused.returncode != 0:
        assert f" pid {pid} " in refused.stdout and "lock_wait" in refused.stdout, refused.stdout[-2000:]
    waited = time.monotonic()
    ok(codeb(info, command[0], live.project, *command[1:], "--lock-wait", "60"))
    return (
        f"its server-side step still held the lock (a re-run was told who holds it); "
        f"--lock-wait converged after {time.monotonic() - waited:.1f}s"
    )


def test_the_controller_killed_mid_deploy_and_mid_promote(live: Live) -> None:
    """SIGKILL of `codeb` once the new container runs (deploy), and while its switch waits on the
    server (promote), under 4 clients: the domain keeps serving, the server-side step the dead
    controller started finishes by itself, and the same command again converges."""
    # In no slot yet, whichever tests ran before; 503 for its first 3 s, so the deploy is still
    # health-checking it when the test sees its container run and kills the controller.
    info, image = live.info, build_turning_image("v5-warming", "v5", fail_after=None, ready_after=3)
    health = ("--health-path", TURNING_HEALTH_PATH)
    from tests.support.load_process import LoadProcess

    green = f"{live.project}-production-green"
    before = state_agrees(live)
    assert before["active_slot"] == "blue"
    url = f"https://127.0.0.1:{info.servers['app'].https_port}/"
    with LoadProcess(url, live.domain, clients=4, keepalive=False, max_seconds=400, root_pem=live.root_pem) as load:
        load.wait(1.0)
        running_new = lambda: (
            ssh(
                info, "app", f"podman inspect --format '{{{{.ImageName}}}} {{{{.State.Running}}}}' {green}"
            ).stdout.split()
            == [image, "true"]
        )
        pid, seconds = killed_at(
            live, ["deploy", live.project, "--image", image, "--push", *health], "the new container runs", running_new
        )
        print(
            f"\ncontroller SIGKILLed {seconds}s into a deploy, its new container running; "
            f"{rerun(live, pid, 'deploy', '--image', image, '--push', *health)}"
        )
        assert state_agrees(live)["slots"]["green"]["state"] == "deployed"
        assert live.serves(f"{live.project}-preview.codeb.test") == "v5"

        # A promote is one server-side command: the controller is killed while that command waits
        # on the server for a lock the test holds; released, the switch goes on by itself.
        green_port = before["slots"]["green"]["port"]
        lock = f"/opt/codeb/locks/{live.project}.production.lock"
        must(ssh(info, "app", f"""printf '{{"holder": "the test", "since": "now"}}' > {lock}"""))
        waiting = lambda: (
            ssh(info, "app", f"pgrep -f '[c]odeb-state switch .*--project {live.project} '").returncode == 0
        )
        pid, seconds = killed_at(
            live, ["promote", live.project, "--lock-wait", "120"], "its switch waits on the server", waiting
        )
        must(ssh(info, "app", f"rm -f {lock}"))
        moved = wait_until("the pointer moved", lambda: live.pointer() == f"127.0.0.1:{green_port}", 30)
        print(
            f"controller SIGKILLed {seconds}s into a promote, its switch waiting on the server for a lock; "
            f"released, the switch moved the pointer {moved:.1f}s later; {rerun(live, pid, 'promote')}"
        )
        assert state_agrees(live)["active_slot"] == "green"
        load.wait(1.0)
    result = load.result()
    print(f"under 4 clients throughout: {result.total} requests, {result.failed} failed")
    assert result.failed == 0, result.failures
    assert set(result.bodies) <= {"v1", "v5"} and result.bodies["v1"] > 0


def test_a_slot_whose_release_crash_looped_takes_the_next_deploy_at_once(live: Live) -> None:
    """A release whose container cannot start makes systemd restart its slot's unit until the
    unit's start limit refuses more; the next deploy into that slot, right after, still starts."""
    info, images = live.info, ensure_images()
    serving = live.serves()
    absent = f"localhost/codeb-test-app:absent-{RUN}"  # on no server: its container exits at once
    failed = codeb(info, "deploy", live.project, "--image", absent, "--force")  # over a slot in grace too
    assert failed.returncode != 0 and "failed; the active slot and its traffic are unchanged" in failed.stdout
    slot = next(s for s, r in state_agrees(live)["slots"].items() if r["state"] == "failed")
    unit = f"{live.project}-production-{slot}.service"
    # Restarted at once each time it exits, the unit spends its start limit (5 in 10 s) within a
    # second and stays failed; a start during the rest of those 10 s is refused unless reset.
    given_up = lambda: ssh(info, "app", f"systemctl show -p ActiveState --value {unit}").stdout.strip() == "failed"
    print(f"\n{unit} given up after {wait_until('the crash loop to end', given_up, 20):.1f}s")
    again = ok(codeb(info, "deploy", live.project, "--image", images["v2"], "--push", "--force"))
    assert "preview" in again
    assert live.serves(f"{live.project}-preview.codeb.test") == "v2"
    assert live.serves() == serving, "the active slot served throughout"
