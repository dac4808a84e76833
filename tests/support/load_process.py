"""Runs a :class:`LoadLoop` in a child process, for measurements where timing matters.

Client threads and the code that performs a switch share one GIL when they live in one process, so
the switch command would appear to take milliseconds it does not. In a child process the clients
keep their own interpreter; ``time.monotonic`` is the same system clock in both, so timestamps
from the two sides still compare.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import multiprocessing.synchronize
import time
from typing import Any

from .load import LoadLoop, LoadResult, checked
from .running import StartStop


def _run_child(
    loop_args: dict[str, Any],
    stop: multiprocessing.synchronize.Event,
    finished: multiprocessing.synchronize.Event,
    results: multiprocessing.connection.Connection,
) -> None:
    loop = LoadLoop(**loop_args)
    loop.start()
    try:
        while loop.running and not stop.wait(0.02):
            pass
    finally:
        finished.set()
        loop.stop()
        results.send(loop.collect())
        results.close()


class LoadProcess(StartStop):
    """The same bounded load as :class:`LoadLoop`, with its clients in a daemon child process.

    The child stops itself at ``max_seconds``/``max_requests``; being a daemon, it also dies with
    the parent.
    """

    def __init__(
        self,
        url: str,
        host_header: str,
        clients: int = 4,
        keepalive: bool = False,
        max_seconds: float = 60,
        max_requests: int = 200_000,
        timeout: float = 5.0,
        root_pem: str | None = None,
    ) -> None:
        # Build one in this process first so bad arguments (a non-loopback URL) fail here.
        LoadLoop(url, host_header, clients, keepalive, max_seconds, max_requests, timeout, root_pem)
        self._loop_args: dict[str, Any] = {
            "url": url,
            "host_header": host_header,
            "clients": clients,
            "keepalive": keepalive,
            "max_seconds": max_seconds,
            "max_requests": max_requests,
            "timeout": timeout,
            "root_pem": root_pem,
        }
        self.max_seconds = max_seconds
        self.timeout = timeout
        # spawn, not fork: a process that imported pyinfra_cli has gevent-patched threads and sockets.
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._finished = context.Event()
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_run_child,
            args=(self._loop_args, self._stop, self._finished, sender),
            name="load-process",
            daemon=True,
        )
        self._sender = sender
        self._result: LoadResult | None = None

    def start(self) -> None:
        self._process.start()
        self._sender.close()

    @property
    def running(self) -> bool:
        return self._process.is_alive() and not self._finished.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep while load runs; returns early if the child hit a bound."""
        end = time.monotonic() + seconds
        while self.running and time.monotonic() < end:
            time.sleep(min(0.02, max(0.0, end - time.monotonic())))

    def stop(self) -> None:
        if self._result is not None or self._process.pid is None:
            return
        self._stop.set()
        try:
            if self._receiver.poll(self.max_seconds + self.timeout + 30):
                self._result = self._receiver.recv()
        except EOFError:
            pass
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
        if self._result is None:
            raise RuntimeError(f"load process ended without a result (exit {self._process.exitcode})")

    def result(self) -> LoadResult:
        if self._result is None:
            raise RuntimeError("stop the load process before reading its result")
        return checked(self._result)
