"""The pieces of a blue-green switch under test: two app slots, Caddy site texts, and a driver.

Shared by the smoke test and the switch bench so both measure exactly the same mechanism.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from .images import build_test_image
from .load import Switch
from .net import LOOPBACK, free_loopback_port, wait_for_body
from .podman import remove_containers, run_app_container

SITE_HOST = "app.test"


class RunningLoad(Protocol):
    """What a switch driver needs from a load generator (:class:`LoadLoop` or ``LoadProcess``)."""

    @property
    def running(self) -> bool: ...

    def wait(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Slot:
    """One running app container: its name, loopback port and the body its ``/`` answers."""

    container: str
    port: int
    body: str

    @property
    def upstream(self) -> str:
        return f"{LOOPBACK}:{self.port}"


class AppSlots:
    """Two app containers (bodies ``v1`` and ``v2``) on loopback ports, removed on exit.

    Containers get a random suffix so parallel runs never collide, and are removed by name even
    when the block fails.
    """

    def __init__(self, bodies: Sequence[str] = ("v1", "v2"), prefix: str = "codeb-test") -> None:
        run = uuid.uuid4().hex[:8]
        self.slots = [Slot(container=f"{prefix}-{run}-{body}", port=free_loopback_port(), body=body) for body in bodies]

    def __enter__(self) -> list[Slot]:
        try:
            for slot in self.slots:
                image = build_test_image(slot.body, slot.body)
                run_app_container(slot.container, image, slot.port)
            for slot in self.slots:
                wait_for_body(f"http://{slot.upstream}/", slot.body)
        except BaseException:
            remove_containers(slot.container for slot in self.slots)
            raise
        return self.slots

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        remove_containers(slot.container for slot in self.slots)


def site_address(port: int) -> str:
    return f"http://{SITE_HOST}:{port}"


def pointer_site(port: int, pointer: Path, *, extra: Sequence[str] = ()) -> str:
    """A site that proxies to whatever ``host:port`` the pointer file holds, read per request.

    Switching is then a rename of the pointer file; Caddy's config never changes.
    """
    body = [
        "\tbind 127.0.0.1",
        f"\tvars upstream {{file.{pointer}}}",
        "\treverse_proxy {vars.upstream}",
        *(f"\t{line}" for line in extra),
    ]
    return f"{site_address(port)} {{\n" + "\n".join(body) + "\n}\n"


def static_site(port: int, upstream: str, *, extra: Sequence[str] = ()) -> str:
    """A site with a fixed upstream; switching it means rewriting this file and reloading Caddy."""
    body = ["\tbind 127.0.0.1", f"\treverse_proxy {upstream}", *(f"\t{line}" for line in extra)]
    return f"{site_address(port)} {{\n" + "\n".join(body) + "\n}\n"


def write_pointer(pointer: Path, upstream: str) -> None:
    """Point the site at ``upstream`` atomically: write a temporary file, rename it over."""
    temporary = pointer.with_name(f".{pointer.name}.{os.getpid()}.tmp")
    temporary.write_text(upstream)
    os.replace(temporary, pointer)


def drive_switches(
    loop: RunningLoad,
    slots: Sequence[Slot],
    switch_to: Callable[[Slot], None],
    *,
    count: int,
    interval: float,
    settle: float = 0.5,
    confirm: Callable[[Slot, float], bool] | None = None,
    confirm_timeout: float = 5.0,
) -> list[Switch]:
    """Switch between ``slots`` in turn ``count`` times, one every ``interval`` seconds.

    With ``confirm(slot, since)`` the next switch also waits (up to ``confirm_timeout``) until a
    client got an answer from the new slot: on a busy machine the clients may send nothing for
    longer than ``interval``, and a switch undone before anyone asked proves nothing either way.
    Assumes traffic goes to ``slots[0]`` when called. Stops early if the load loop hit a bound, so
    a bench phase can never outlive its load.
    """
    switches: list[Switch] = []
    loop.wait(settle)
    next_at = time.monotonic()
    for index in range(count):
        if not loop.running:
            break
        old, new = slots[index % len(slots)], slots[(index + 1) % len(slots)]
        started = time.monotonic()
        switch_to(new)
        returned = time.monotonic()
        switches.append(Switch(started, returned, old.body, new.body))
        next_at += interval
        loop.wait(max(0.0, next_at - time.monotonic()))
        if confirm is not None:
            give_up = time.monotonic() + confirm_timeout
            while loop.running and not confirm(new, started) and time.monotonic() < give_up:
                loop.wait(0.01)
            next_at = max(next_at, time.monotonic())
    loop.wait(settle)
    return switches
