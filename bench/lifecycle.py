"""Promote and deploy through codeb-infra, side by side with doing the same by hand.

    python bench/lifecycle.py [--runs 7] [--switches 20]

1. Switching under load: 20 codeb switches (one promote, then rollbacks, which toggle) against the
   hand-made plain approach (rewrite a static site file + `caddy reload`) on the same two slot
   containers, with new-connection and keep-alive clients: requests, failures, client-seen switch
   time (last old response -> first new response) and switch command time.
2. Promote wall time: `codeb` promote/rollback through pyinfra's API vs the commands it boils down
   to, run directly (rename of the upstream pointer), and vs the plain approach's commands.
3. Deploy wall time: `codeb` deploy vs plain `podman run` + health poll of the same image.

Medians of several runs, interleaved so machine noise hits both sides alike. Loopback only.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codeb_infra import flows
from codeb_infra.controller import runner
from codeb_infra.domain.requests import DeployRequest, SlotRequest
from tests.support.images import ensure_images
from tests.support.load import LoadResult, Switch, summarize_switches
from tests.support.load_process import LoadProcess
from tests.support.podman import podman
from tests.support.stack import BASE_DOMAIN, Stack, open_stack


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f}"


def client_gaps(result: LoadResult, switches: list[Switch]) -> list[float]:
    """Per switch: end of the last old-slot response before the first new one -> that first new one."""
    gaps = []
    for check in result.check_switches(switches):
        if check.first_new is None:
            continue
        old = [
            s.end
            for s in result.between(check.started - 5, check.first_new.end)
            if s.ok and s.text == check.old_body and s.end <= check.first_new.end
        ]
        if old:
            gaps.append(check.first_new.end - max(old))
    return gaps


class Bench:
    def __init__(self, stack: Stack, images: dict[str, str]) -> None:
        self.stack, self.images = stack, images
        self.project = "bench" + uuid.uuid4().hex[:5]
        stack.projects.add(self.project)
        self.request = SlotRequest(project=self.project)

    def run(self, flow: Callable[..., object], request: object) -> None:
        result = runner.run_flow("@local", flow, request, data=self.stack.data(), verbose=False)
        if not result.ok:
            raise RuntimeError(f"{flow} failed")

    def prepare(self) -> None:
        for image, promote in ((self.images["v1"], True), (self.images["v2"], True)):
            self.run(flows.deploy_release, DeployRequest(project=self.project, image=image))
            if promote:
                self.run(flows.promote, self.request)
        self.ports = {s: info["port"] for s, info in self.stack.status(self.project)["slots"].items()}
        self.pointer = self.stack.directory / "caddy" / "upstreams" / f"{self.project}-production.active"
        self.plain_host = f"plain-{self.project}.{BASE_DOMAIN}"
        self.plain_site = self.stack.caddy.site_path(f"zz-plain-{self.project}")
        self.plain_port = self.ports["green"]
        self.write_plain(self.plain_port)
        self.stack.caddy.reload()

    def write_plain(self, port: int) -> None:
        text = f"http://{self.plain_host} {{\n\treverse_proxy 127.0.0.1:{port}\n}}\n"
        tmp = self.plain_site.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.plain_site)

    def switch_plain(self) -> None:
        self.plain_port = self.ports["blue"] if self.plain_port == self.ports["green"] else self.ports["green"]
        self.write_plain(self.plain_port)
        subprocess.run(
            [self.stack.caddy.binary, "reload", "--adapter", "caddyfile", "--config", str(self.stack.caddy.config)],
            check=True,
            capture_output=True,
        )

    def switch_codeb(self) -> None:
        self.run(flows.rollback, self.request)

    def switch_direct(self) -> None:
        on_green = self.pointer.read_text().strip().endswith(str(self.ports["green"]))
        address = f"127.0.0.1:{self.ports['blue'] if on_green else self.ports['green']}"
        subprocess.run(
            ["sh", "-c", 'printf "%s\\n" "$1" > "$2.tmp" && mv -f "$2.tmp" "$2"', "sh", address, str(self.pointer)],
            check=True,
        )

    def serving(self, host: str) -> str:
        return self.stack.get(host)[1]

    def under_load(
        self, host: str, switch: Callable[[], None], count: int, keepalive: bool
    ) -> tuple[LoadResult, list[Switch]]:
        switches = []
        with LoadProcess(
            f"http://127.0.0.1:{self.stack.http_port}/", host, clients=4, keepalive=keepalive, max_seconds=300
        ) as load:
            load.wait(0.5)
            for _ in range(count):
                old = self.serving(host)
                started = time.monotonic()
                switch()
                returned = time.monotonic()
                switches.append(Switch(started, returned, old, "v1" if old == "v2" else "v2"))
                load.wait(0.3)
            load.wait(0.5)
        return load.result(), switches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--switches", type=int, default=20)
    args = parser.parse_args()
    print(f"reproduce: python bench/lifecycle.py --runs {args.runs} --switches {args.switches}\n")
    images = ensure_images()
    with tempfile.TemporaryDirectory() as tmp, open_stack(Path(tmp)) as stack:
        bench = Bench(stack, images)
        bench.prepare()
        domain = f"{bench.project}.{BASE_DOMAIN}"

        print("1. switching under load (4 clients)")
        print(
            f"{'mechanism':34} {'mode':10} {'requests':>8} {'failed':>6} {'gap med ms':>10} {'gap max ms':>10}"
            f" {'command med ms':>14}"
        )
        for keepalive in (False, True):
            for label, host, switch in (
                ("codeb promote/rollback (pointer)", domain, bench.switch_codeb),
                ("plain site rewrite + caddy reload", bench.plain_host, bench.switch_plain),
            ):
                result, switches = bench.under_load(host, switch, args.switches, keepalive)
                gaps = client_gaps(result, switches)
                summary = summarize_switches(result.check_switches(switches))
                print(
                    f"{label:34} {'keep-alive' if keepalive else 'new-conn':10} {result.total:8} {result.failed:6} "
                    f"{median_ms(gaps) if gaps else '-':>10} {max(gaps) * 1000 if gaps else 0:10.0f}"
                    f" {summary.command_median * 1000:14.0f}"
                )

        print("\n2. promote wall time (median of interleaved runs)")
        codeb, direct, plain = [], [], []
        for _ in range(args.runs):
            codeb.append(timed(bench.switch_codeb))
            direct.append(timed(bench.switch_direct))
            plain.append(timed(bench.switch_plain))
        print(f"codeb rollback via pyinfra API      {median_ms(codeb):>6} ms")
        print(
            f"same switch run directly (rename)   {median_ms(direct):>6} ms"
            f"   codeb / direct = {statistics.median(codeb) / statistics.median(direct):.0f}x"
        )
        print(
            f"plain site rewrite + caddy reload   {median_ms(plain):>6} ms"
            f"   codeb / plain  = {statistics.median(codeb) / statistics.median(plain):.1f}x"
        )

        print("\n3. deploy wall time (median of interleaved runs)")
        lib, manual = [], []
        for index in range(args.runs):
            project = f"bd{uuid.uuid4().hex[:6]}"
            stack.projects.add(project)
            lib.append(
                timed(
                    lambda project=project: bench.run(
                        flows.deploy_release, DeployRequest(project=project, image=images["v1"])
                    )
                )
            )
            name = f"bench-plain-{index}"
            manual.append(timed(lambda name=name: plain_deploy(name, images["v1"], 4990)))
            podman("rm", "--force", "--time", "0", name, check=False)
        print(f"codeb deploy (first deploy)         {median_ms(lib):>6} ms")
        print(
            f"podman run + health poll            {median_ms(manual):>6} ms"
            f"   codeb / plain = {statistics.median(lib) / statistics.median(manual):.1f}x"
        )


def plain_deploy(name: str, image: str, port: int) -> None:
    podman("run", "--detach", "--pull=never", f"--name={name}", f"--publish=127.0.0.1:{port}:3000", image)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("plain deploy never became healthy")


if __name__ == "__main__":
    main()
