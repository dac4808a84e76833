"""Proves the test support pieces work together: images, containers, Caddy, load and switching.

Two real app containers behind a real Caddy, four clients hammering it, and the pointer file
renamed between the two slots twenty times: not one request may fail, and none that started after
a switch returned may reach the old slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .caddy import CaddyProcess
from .load import LoadLoop, summarize_switches
from .net import LOOPBACK, free_loopback_port, wait_for_body
from .switching import SITE_HOST, AppSlots, Slot, drive_switches, pointer_site, write_pointer

pytestmark = pytest.mark.integration

SWITCHES = 20


@pytest.fixture(scope="module")
def slots() -> Iterator[list[Slot]]:
    with AppSlots(("v1", "v2"), prefix="codeb-smoke") as running:
        yield running


@pytest.mark.parametrize("keepalive", [False, True], ids=["new-connection", "keep-alive"])
def test_pointer_switch_drops_nothing(slots: list[Slot], tmp_path: Path, keepalive: bool) -> None:
    blue, green = slots
    port = free_loopback_port()
    pointer = tmp_path / "upstream"
    write_pointer(pointer, blue.upstream)
    url, host_header = f"http://{LOOPBACK}:{port}/", f"{SITE_HOST}:{port}"

    with CaddyProcess(tmp_path / "caddy") as caddy:
        caddy.write_site("app", pointer_site(port, pointer))
        caddy.reload()
        wait_for_body(url, blue.body, host_header=host_header)

        with LoadLoop(url, host_header, clients=4, keepalive=keepalive, max_seconds=30) as loop:
            switches = drive_switches(
                loop,
                slots,
                lambda slot: write_pointer(pointer, slot.upstream),
                count=SWITCHES,
                interval=0.1,
                settle=0.3,
                confirm=lambda slot, since: loop.saw(slot.body, since),
            )

    result = loop.result()
    summary = summarize_switches(result.check_switches(switches))
    assert len(switches) == SWITCHES
    assert result.total > 10 * SWITCHES, f"too little traffic to judge: {result.total} requests"
    assert result.failed == 0, result.failures
    assert set(result.bodies) == {"v1", "v2"}, result.bodies
    assert summary.late_old == 0, "a request started after a switch returned reached the old slot"
    assert summary.missing_new == 0, "some switch never showed the new slot to any client"
