"""The control plane's speed on the sandbox's app server (after `codeb sandbox up` and a bootstrap;
CODEB_SANDBOX_NAME picks the sandbox), side by side in one run:

    python bench/api.py [--switches 10] [--clients 20] [--reads 5]

1. A switch through the API (`rollback`, each one a real switch, request -> response through Caddy,
   the rename done) against one raw `ssh` of the same rename of the upstream pointer, interleaved.
2. `slot_status` through the API with N concurrent clients while a deploy runs: median and p99.

Loopback only: the sandbox's published HTTPS and SSH ports.
"""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codeb_infra.controller import probe
from codeb_infra.sandbox import status as sandbox_status
from tests.support.images import ensure_images
from tests.support.sandbox_ssh import SSH_OPTIONS, ssh

PROJECT = "apibench"
API = "api.codeb.test"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Api:
    def __init__(self, port: int, root: str, key: str) -> None:
        self.port, self.context, self.key = port, ssl.create_default_context(cadata=root), key

    def call(self, tool: str, **params: Any) -> tuple[int, dict[str, Any]]:
        connection = probe.PinnedHTTPSConnection(API, "127.0.0.1", self.port, self.context, 600)
        try:
            connection.request(
                "POST",
                "/api/tool",
                body=json.dumps({"tool": tool, "params": params}),
                headers={"Host": API, "X-API-Key": self.key, "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()


def codeb(inventory: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "codeb_infra.cli", *args, "-i", inventory], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"codeb {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--reads", type=int, default=5, help="slot_status calls per client during the deploy")
    args = parser.parse_args()
    info = sandbox_status(echo=lambda _: None)
    if info is None:
        raise SystemExit("no sandbox running: codeb sandbox up, then codeb bootstrap")
    inventory = str(info.inventory)
    images = ensure_images()
    root = ssh(info, "app", f"cat {probe.CADDY_LOCAL_ROOT}").stdout
    key = (
        codeb(inventory, "keys", "create", "--role", "dev", "--project", PROJECT, "--name", "bench")
        .strip()
        .splitlines()[-1]
    )
    api = Api(info.servers["app"].https_port, root, key)
    for image in (images["v1"], images["v2"]):
        codeb(inventory, "deploy", PROJECT, "--image", image, "--push", "--force")
        codeb(inventory, "promote", PROJECT)
    status = api.call("slot_status", project=PROJECT)[1]["result"]
    pointer = f"/etc/caddy/upstreams/{PROJECT}-production.active"
    ports = [status["slots"][s]["port"] for s in ("blue", "green")]

    # 1. switches, interleaved
    through_api, raw = [], []
    ssh_base = ["ssh", "-i", str(info.ssh_key), "-p", str(info.servers["app"].ssh_port), *SSH_OPTIONS, "root@127.0.0.1"]
    for n in range(args.switches):
        started = time.monotonic()
        # Each rollback switches (the slot left stays in its grace period); a promote after a
        # rollback would have nothing deployed to switch to.
        code, answer = api.call("rollback", project=PROJECT)
        through_api.append(time.monotonic() - started)
        assert code == 200 and answer["result"]["changed"], answer
        started = time.monotonic()
        target = ports[(n + 1) % 2]  # the slot the rollback just left
        subprocess.run(
            [*ssh_base, f"printf 127.0.0.1:{target} > {pointer}.bench && mv {pointer}.bench {pointer}"], check=True
        )
        raw.append(time.monotonic() - started)
        # put back what the registry says, so the next API switch starts from a true state
        subprocess.run(
            [*ssh_base, f"printf 127.0.0.1:{ports[n % 2]} > {pointer}.bench && mv {pointer}.bench {pointer}"],
            check=True,
        )
    api_median, raw_median = statistics.median(through_api), statistics.median(raw)
    print(
        f"switch through the API: median {api_median * 1000:.0f} ms; "
        f"raw ssh rename: median {raw_median * 1000:.0f} ms; "
        f"ratio {api_median / raw_median:.1f}x ({args.switches} each)"
    )

    # 2. slot_status under concurrency while a deploy runs
    seen: list[float] = []
    failures = []
    deploy_done = threading.Event()

    def deploy() -> None:
        api.call("deploy_project", project=PROJECT, image=images["v1"], force=True)
        deploy_done.set()

    def reader() -> None:
        for _ in range(args.reads):
            started = time.monotonic()
            code, _ = api.call("slot_status", project=PROJECT)
            seen.append(time.monotonic() - started)
            if code != 200:
                failures.append(code)

    deployer = threading.Thread(target=deploy)
    deployer.start()
    time.sleep(0.5)
    readers = [threading.Thread(target=reader) for _ in range(args.clients)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    overlapped = not deploy_done.is_set()
    deployer.join()
    print(
        f"slot_status, {args.clients} concurrent clients x {args.reads} calls, deploy running"
        f"{'' if overlapped else ' (deploy finished before the last read)'}: "
        f"median {statistics.median(seen) * 1000:.0f} ms, "
        f"p99 {percentile(seen, 0.99) * 1000:.0f} ms, failed {len(failures)} of {len(seen)}"
    )


if __name__ == "__main__":
    main()
