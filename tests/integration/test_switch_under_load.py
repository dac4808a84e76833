"""Promote and rollback through the library while clients hammer the domain: nothing may fail."""

from __future__ import annotations

import time

import pytest

from codeb_infra import flows
from codeb_infra.controller import runner
from codeb_infra.domain.requests import SlotRequest
from tests.support import isolated
from tests.support.load import Switch, summarize_switches
from tests.support.load_process import LoadProcess

pytestmark = pytest.mark.integration

SWITCHES = 20


@pytest.mark.parametrize("keepalive", [False, True], ids=["new-connection", "keep-alive"])
def test_twenty_switches_under_load_drop_no_request(stack, project, images, keepalive):
    stack.codeb("deploy", project, "--image", images["v1"])
    stack.codeb("promote", project)
    stack.codeb("deploy", project, "--image", images["v2"])
    request = SlotRequest(project=project)
    data = stack.data()
    switches: list[Switch] = []
    load = LoadProcess(
        f"http://127.0.0.1:{stack.http_port}/",
        f"{project}.codeb.test",
        clients=4,
        keepalive=keepalive,
        max_seconds=240,
        max_requests=400_000,
    )
    with load:
        load.wait(0.5)
        serving = "v1"
        for index in range(SWITCHES):
            flow = flows.promote if index == 0 else flows.rollback
            started = time.monotonic()
            result = isolated.call(runner.run_flow, "@local", flow, request, data=data, verbose=False)
            returned = time.monotonic()
            assert result.ok and result.changed > 0
            new = "v2" if serving == "v1" else "v1"
            switches.append(Switch(started, returned, serving, new))
            serving = new
            load.wait(0.3)
        load.wait(0.5)
    result = load.result()
    checks = result.check_switches(switches)
    summary = summarize_switches(checks)
    print(
        f"\n{'keep-alive' if keepalive else 'new-connection'}: {result.total} requests, {result.failed} failed, "
        f"{SWITCHES} switches; client-seen switch latency median {summary.latency_median * 1000:.0f} ms, "
        f"max {summary.latency_max * 1000:.0f} ms; switch command median {summary.command_median * 1000:.0f} ms"
    )
    assert result.failed == 0, result.failures
    assert set(result.bodies) == {"v1", "v2"}
    assert result.total > 20 * SWITCHES
    assert summary.missing_new == 0, "every switch must reach the new slot"
    assert summary.late_old == 0, "no request started after a switch returned may reach the old slot"
    assert stack.serves(project) == serving
