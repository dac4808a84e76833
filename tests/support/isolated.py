"""pyinfra's CLI package gevent-patches the whole process that imports it (threads, sockets,
select). Tests that drive pyinfra from Python rather than through the `codeb` or `pyinfra`
commands do it here, in one spawned process of their own, so that pytest's process keeps real
threads and sockets for what needs them (FastAPI's TestClient, asyncio, the MCP client)."""

from __future__ import annotations

import atexit
import multiprocessing
from collections.abc import Callable
from multiprocessing.pool import Pool
from typing import Any, TypeVar

T = TypeVar("T")
_pool: Pool | None = None


def call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in the spawned process (function and values pickled by reference)."""
    global _pool
    if _pool is None:
        _pool = multiprocessing.get_context("spawn").Pool(1)
        atexit.register(_pool.terminate)
    return _pool.apply(func, args, kwargs)


def gevent_patched() -> bool:
    """Whether this process was gevent-patched (what the isolation keeps from happening)."""
    import sys

    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))  # type: ignore[attr-defined]
