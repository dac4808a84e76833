"""Promote and deploy over SSH to the sandbox's app server, side by side with their floor and
with doing the same by hand.

    CODEB_SANDBOX_NAME=... python bench/ssh_switch.py [--runs 7] [--projects 200]

Needs a bootstrapped sandbox (`codeb sandbox up`, `codeb bootstrap -i INVENTORY`). Interleaved,
medians of --runs each:

(a) `codeb rollback PROJECT` (a switch, the same path as promote: one snapshot read, one
    `codeb-state switch`), as a user runs it: a new process, a new SSH connection;
(b) the floor: a new process importing the same code that connects over SSH to the app server
    and runs a pyinfra flow with no operation;
(c) the switch by hand: one `ssh` running the pointer rename.
Goal: (a - b) <= 2 x (c). Then (d) `codeb deploy --force` of another release into the inactive
slot against (e) `podman run` + health poll by hand over one `ssh`: (d - b) <= 1.5 x (e); where the
server runs slots as Quadlet units, also against (e') the same start by hand (the unit written,
`systemctl daemon-reload`, `systemctl restart`, poll). Then
(a) again with --projects extra projects registered on the app server (removed afterwards):
at most 1.1 x (a). Also prints how many remote commands one promote and one deploy run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codeb_infra.sandbox import SandboxInfo, status  # noqa: E402
from tests.support.images import ensure_images  # noqa: E402
from tests.support.podman import podman  # noqa: E402
from tests.support.sandbox_ssh import ssh  # noqa: E402

PROJECT = "benchswitch"
REGISTRY = "/opt/codeb/registry"
POINTER = f"/etc/caddy/upstreams/{PROJECT}-production.active"
HAND_PORT, HAND_UNIT_PORT = 4998, 4997  # the unit keeps running between runs, as a slot's does
POLL = "until curl -fsS -o /dev/null http://127.0.0.1:{port}/health; do sleep 0.1; done"
QUADLET_CHECK = (
    "if [ -d /run/systemd/system ] && { [ -x /usr/libexec/podman/quadlet ] || [ -x /usr/lib/podman/quadlet ]; }; "
    "then echo quadlet; else echo podman; fi"
)
HAND_UNIT_PATH = "/etc/containers/systemd/bench-hand.container"
HAND_UNIT = """[Container]
ContainerName=bench-hand
Image={image}
PublishPort=127.0.0.1:{port}:3000
Pull=never

[Service]
Restart=always
"""

FLOOR = """
import sys
from pyinfra.api import deploy
from codeb_infra import cli  # the same imports as `codeb`
from codeb_infra.controller import runner

@deploy("nothing")
def nothing():
    pass

runner.run_flow(sys.argv[1], nothing, verbose=False)
"""

COUNT = """
import sys
from pyinfra.api.host import Host
from codeb_infra import flows
from codeb_infra.controller import runner
from codeb_infra.domain.requests import DeployRequest, SlotRequest

calls = {"commands": 0, "uploads": 0}
run, put = Host.run_shell_command, Host.put_file
def counted_run(self, *args, **kwargs):
    calls["commands"] += 1
    return run(self, *args, **kwargs)
def counted_put(self, *args, **kwargs):
    calls["uploads"] += 1
    return put(self, *args, **kwargs)
Host.run_shell_command, Host.put_file = counted_run, counted_put
inventory, what = sys.argv[1], sys.argv[2]
if what == "rollback":
    runner.run_flow(inventory, flows.rollback, SlotRequest(project=sys.argv[3]), verbose=False)
else:
    runner.run_flow(inventory, flows.deploy_release,
                    DeployRequest(project=sys.argv[3], image=sys.argv[4], force=True), verbose=False)
print(calls["commands"], calls["uploads"])
"""

SEED = """
import json, os, sys
registry, count, action = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for name, table in (("ssot.json", "projects"), ("slots.json", "slots")):
    path = os.path.join(registry, name)
    data = json.load(open(path))
    extra = {f"benchfill{i:03}" for i in range(count)}
    rows = data.setdefault(table, {})
    for project in extra:
        if action == "remove":
            rows.pop(project, None)
        elif table == "projects":
            rows[project] = {"production": {"domain": f"{project}.codeb.test", "container_port": 3000,
                             "health_path": "/health", "ports": {"blue": 4000, "green": 4001}, "aliases": []}}
        else:
            rows[project] = {"production": {"blue": {"state": "active"}, "green": {"state": "grace"}}}
    tmp = path + ".bench"
    json.dump(data, open(tmp, "w"), indent=2, sort_keys=True)
    os.replace(tmp, path)
print(len(json.load(open(os.path.join(registry, "ssot.json")))["projects"]))
"""


def timed(command: list[str]) -> float:
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def ssh_command(info: SandboxInfo, command: str) -> list[str]:
    from tests.support.sandbox_ssh import SSH_OPTIONS

    port = str(info.servers["app"].ssh_port)
    return ["ssh", "-i", str(info.ssh_key), "-p", port, *SSH_OPTIONS, "root@127.0.0.1", command]


def must(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode != 0:
        raise SystemExit(f"failed: {result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--projects", type=int, default=200)
    args = parser.parse_args()
    info = status(echo=lambda _: None)
    if info is None:
        raise SystemExit("no sandbox running: `codeb sandbox up` and `codeb bootstrap -i INVENTORY` first")
    inventory = str(info.inventory)
    codeb = [sys.executable, "-m", "codeb_infra.cli"]
    images = ensure_images()
    print(f"reproduce: python bench/ssh_switch.py --runs {args.runs} --projects {args.projects}\n")

    # Two releases, promoted one after the other: rollback then toggles between them.
    for image in (images["v1"], images["v2"]):
        timed([*codeb, "deploy", PROJECT, "--image", image, "--push", "--force", "-i", inventory])
        timed([*codeb, "promote", PROJECT, "-i", inventory])
    slots = json.loads(must(ssh(info, "app", f"cat {REGISTRY}/ssot.json")))["projects"][PROJECT]["production"]["ports"]
    addresses = [f"127.0.0.1:{slots['blue']}", f"127.0.0.1:{slots['green']}"]
    floor_script = [sys.executable, "-c", FLOOR, inventory]

    commands, uploads = must(
        subprocess.run(
            [sys.executable, "-c", COUNT, inventory, "rollback", PROJECT], cwd=ROOT, capture_output=True, text=True
        )
    ).split()
    print(f"remote commands of one promote/rollback: {commands} (file uploads: {uploads})")

    def switch_by_hand(index: int) -> list[str]:
        address = addresses[index % 2]
        return ssh_command(info, f"printf '%s\\n' {address} > {POINTER}.tmp && mv -f {POINTER}.tmp {POINTER}")

    switched, floor, by_hand = [], [], []
    for index in range(args.runs):
        switched.append(timed([*codeb, "rollback", PROJECT, "-i", inventory]))
        floor.append(timed(floor_script))
        by_hand.append(timed(switch_by_hand(index)))
    # Leave the pointer where the registry says it is (the hand-made renames toggled it too).
    timed([*codeb, "promote", PROJECT, "-i", inventory])
    a, b, c = ms(switched), ms(floor), ms(by_hand)
    print("\n1. promote/rollback over SSH (median of interleaved runs)")
    print(f"(a) codeb rollback, new process + SSH connection     {a:7.0f} ms")
    print(f"(b) floor: same imports, SSH connect, empty pyinfra  {b:7.0f} ms")
    print(f"(c) the rename by hand over one ssh                  {c:7.0f} ms")
    print(f"(a - b) = {a - b:.0f} ms; 2 x (c) = {2 * c:.0f} ms: {'met' if a - b <= 2 * c else 'NOT met'}")

    print("\n2. deploy over SSH (median of interleaved runs)")
    # Two more names for the two releases, so that each deploy differs from what both slots hold.
    fresh = []
    for index, source in enumerate((images["v1"], images["v2"])):
        tag = f"{source.rsplit(':', 1)[0]}:bench{index}"
        podman("tag", source, tag)
        timed([*codeb, "deploy", PROJECT, "--image", tag, "--push", "--force", "-i", inventory])
        fresh.append(tag)
    commands, uploads = must(
        subprocess.run(
            [sys.executable, "-c", COUNT, inventory, "deploy", PROJECT, fresh[0]],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    ).split()
    print(f"remote commands of one deploy (a new release, --force): {commands} (file uploads: {uploads})")
    runner = must(ssh(info, "app", QUADLET_CHECK)).strip()
    print(f"the server runs slots as: {runner}")
    deployed, hand, hand_unit, deploy_floor = [], [], [], []
    for index in range(args.runs):
        image = fresh[(index + 1) % 2]
        deployed.append(timed([*codeb, "deploy", PROJECT, "--image", image, "--force", "-i", inventory]))
        deploy_floor.append(timed(floor_script))
        on_server = images[("v1", "v2")[index % 2]]
        name = f"bench-hand-{index}"
        hand.append(
            timed(
                ssh_command(
                    info,
                    (
                        f"podman run --detach --pull=never --name {name} --publish 127.0.0.1:{HAND_PORT}:3000 "
                        f"{shlex.quote(on_server)} >/dev/null && {POLL.format(port=HAND_PORT)}"
                    ),
                )
            )
        )
        must(ssh(info, "app", f"podman rm --force --time 0 {name}"))
        if runner == "quadlet":
            unit = HAND_UNIT.format(image=on_server, port=HAND_UNIT_PORT)
            hand_unit.append(
                timed(
                    ssh_command(
                        info,
                        f"printf %s {shlex.quote(unit)} > {HAND_UNIT_PATH} && systemctl daemon-reload && "
                        f"systemctl restart bench-hand.service && {POLL.format(port=HAND_UNIT_PORT)}",
                    )
                )
            )
    if runner == "quadlet":
        must(ssh(info, "app", f"systemctl stop bench-hand.service; rm -f {HAND_UNIT_PATH}; systemctl daemon-reload"))
    d, e, f = ms(deployed), ms(hand), ms(deploy_floor)
    print(f"(d) codeb deploy --force (new container, health check) {d:7.0f} ms")
    print(f"(b) floor                                              {f:7.0f} ms")
    print(f"(e) podman run + health poll by hand over one ssh      {e:7.0f} ms")
    print(f"(d - b) = {d - f:.0f} ms; 1.5 x (e) = {1.5 * e:.0f} ms: {'met' if d - f <= 1.5 * e else 'NOT met'}")
    if hand_unit:
        u = ms(hand_unit)
        print("(e') the same start as the slots' (a Quadlet unit written, daemon-reload, restart) + poll, by hand")
        print(f"     over one ssh                                      {u:7.0f} ms")
        print(f"(d - b) = {d - f:.0f} ms; 1.5 x (e') = {1.5 * u:.0f} ms: {'met' if d - f <= 1.5 * u else 'NOT met'}")

    timed([*codeb, "promote", PROJECT, "-i", inventory])  # the last deploy's slot live: rollback toggles again
    print(f"\n3. promote/rollback with few vs {args.projects} more projects registered (median of interleaved runs)")
    one, many = [], []
    registered = len(json.loads(must(ssh(info, "app", f"cat {REGISTRY}/ssot.json")))["projects"])
    try:
        for _ in range(args.runs):
            one.append(timed([*codeb, "rollback", PROJECT, "-i", inventory]))
            must(ssh(info, "app", f"python3 - {REGISTRY} {args.projects} add", stdin=SEED))
            many.append(timed([*codeb, "rollback", PROJECT, "-i", inventory]))
            must(ssh(info, "app", f"python3 - {REGISTRY} {args.projects} remove", stdin=SEED))
    finally:
        must(ssh(info, "app", f"python3 - {REGISTRY} {args.projects} remove", stdin=SEED))
    print(f"with {registered} project(s) registered              {ms(one):7.0f} ms")
    ratio = ms(many) / ms(one)
    print(
        f"with {registered + args.projects} projects registered              {ms(many):7.0f} ms   ratio {ratio:.2f} "
        f"({'met' if ms(many) <= 1.1 * ms(one) else 'NOT met'}: <= 1.10)"
    )
    timed([*codeb, "remove", PROJECT, "--force", "-i", inventory])


if __name__ == "__main__":
    main()
