"""The load loop's own guarantees: a client that dies or stops counting fails the run, so "0 failed
requests" always means every client was sending to the end."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from .load import ClientDied, LoadLoop
from .net import LOOPBACK


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"v1"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_all_clients_counting_to_the_end_pass(url: str) -> None:
    with LoadLoop(url, "site", clients=3, max_seconds=10) as loop:
        loop.wait(0.5)
    result = loop.result()
    assert result.failed == 0 and result.total > 3 and result.client_problems == []


def test_a_client_dying_of_an_unexpected_exception_fails_the_run(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = LoadLoop(url, "site", clients=3, max_seconds=10)
    connect = loop._connect

    def dies_in_one_client():
        if threading.current_thread().name == "load-client-1":
            raise KeyError("boom")
        return connect()

    monkeypatch.setattr(loop, "_connect", dies_in_one_client)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the traceback is expected
    with loop:
        loop.wait(0.5)
    with pytest.raises(ClientDied, match="load-client-1 died: KeyError: 'boom'"):
        loop.result()


def test_a_client_that_stops_counting_fails_the_run(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = LoadLoop(url, "site", clients=2, max_seconds=20, timeout=0.5)
    more = loop._more

    def client_0_stalls() -> bool:
        if threading.current_thread().name == "load-client-0" and time.monotonic() > loop._started_at + 0.2:
            loop._stop.wait(10)  # hangs, without an error, until the loop is stopped
        return more()

    monkeypatch.setattr(loop, "_more", client_0_stalls)
    with loop:
        loop.wait(2.5)
    with pytest.raises(ClientDied, match="load-client-0 stopped counting"):
        loop.result()
