"""The blue-green walkthrough on the local sandbox: four servers, bootstrap, deploy, preview,
promote, rollback, with what the domain serves printed at each step."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from codeb_infra import flows
from codeb_infra.controller import probe, runner
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.requests import DeployRequest, SlotRequest
from codeb_infra.facts.files import TextFile
from codeb_infra.roles import BOOTSTRAP_PHASES
from codeb_infra.sandbox import SandboxInfo, up
from codeb_infra.sandbox.demo_app import build_test_image
from codeb_infra.sandbox.inventory import SHARED_DATA

PROJECT = "demo"
REPOSITORY = "localhost/codeb-demo"


class Walkthrough:
    def __init__(self, info: SandboxInfo, echo: Callable[[str], Any]) -> None:
        self.info, self.echo = info, echo
        self.inventory = str(info.inventory)
        self.started = time.monotonic()
        self.root_pem: str | None = None
        base = SHARED_DATA["base_domain"]
        self.domain, self.preview = f"{PROJECT}.{base}", f"{PROJECT}-preview.{base}"

    def step(self, title: str, action: Callable[[], Any]) -> Any:
        began = time.monotonic()
        result = action()
        self.echo(f"[{time.monotonic() - self.started:6.1f}s] {title} ({time.monotonic() - began:.1f}s)")
        return result

    def run(self, flow: Callable[..., Any], *args: Any, every_host: bool = False) -> None:
        result = runner.run_flow(self.inventory, flow, *args, verbose=False, every_host=every_host)
        if not result.ok:
            raise CodebError(
                f"{getattr(flow, '__name__', flow)} failed on {', '.join(result.failed_hosts)}; "
                f"run it with pyinfra {self.inventory} to see the output"
            )

    def serves(self, domain: str) -> str:
        app = self.info.servers["app"]
        if self.root_pem is None:
            self.root_pem = runner.read_facts(self.inventory, lambda: _root_certificate())[0]
        status, body = probe.get(
            domain, address="127.0.0.1", port=app.https_port or 443, https=True, root_pem=self.root_pem
        )
        if status == 502 and domain == self.preview:
            return "nothing yet (HTTP 502: the other slot is empty)"
        return body if status == 200 else f"HTTP {status}"

    def report(self) -> None:
        self.echo(
            f"         https://{self.domain} serves {self.serves(self.domain)!r}, "
            f"https://{self.preview} serves {self.serves(self.preview)!r}"
        )


def _root_certificate() -> str:
    from pyinfra import host

    pem = host.get_fact(TextFile, path=probe.CADDY_LOCAL_ROOT)
    if not pem:
        raise CodebError("Caddy's local root certificate is not on the app server yet")
    return pem


def demo(state_dir: Path | None = None, echo: Callable[[str], Any] = click.echo) -> None:
    started = time.monotonic()
    info = up(state_dir, echo=lambda line: None)
    walk = Walkthrough(info, echo)
    walk.started = started
    walk.echo(
        f"[{time.monotonic() - started:6.1f}s] sandbox up: {', '.join(info.servers)} (inventory {info.inventory})"
    )

    def bootstrap() -> None:
        for phase in BOOTSTRAP_PHASES:
            walk.run(phase, every_host=True)

    walk.step("bootstrap: app, streaming, storage, backup", bootstrap)
    v1 = walk.step("build demo images v1 and v2 locally", lambda: build_test_image("v1", "v1", repository=REPOSITORY))
    v2 = build_test_image("v2", "v2", repository=REPOSITORY)
    request = SlotRequest(project=PROJECT)
    walk.step(
        f"deploy {v1} (copied over SSH) into blue",
        lambda: walk.run(flows.deploy_release, DeployRequest(project=PROJECT, image=v1, push=True)),
    )
    walk.step("promote blue", lambda: walk.run(flows.promote, request))
    walk.report()
    walk.step(
        f"deploy {v2} into green; preview URL https://{walk.preview}",
        lambda: walk.run(flows.deploy_release, DeployRequest(project=PROJECT, image=v2, push=True)),
    )
    walk.report()
    walk.step("promote green (switch without reload)", lambda: walk.run(flows.promote, request))
    walk.report()
    walk.step("rollback to blue (no container touched)", lambda: walk.run(flows.rollback, request))
    walk.report()
    echo(f"done in {time.monotonic() - started:.1f}s. Try: codeb status {PROJECT} -i {info.inventory}")
