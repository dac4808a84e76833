"""Loopback-only networking helpers shared by the test support pieces.

Every load, smoke and bench loop here may only ever talk to this machine, so the one place that
opens connections also refuses any address that is not loopback.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"


def require_loopback(host: str) -> str:
    """Return ``host`` if it names this machine; raise otherwise.

    A typo in a port or host must not turn a request loop into traffic towards another machine.
    """
    if host == "localhost":
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError as error:
        raise ValueError(f"only loopback addresses are allowed, not {host!r}") from error
    if not address.is_loopback:
        raise ValueError(f"only loopback addresses are allowed, not {host!r}")
    return host


def split_loopback_url(url: str) -> tuple[str, int, str]:
    """Split an ``http://`` or ``https://`` URL into (host, port, path), refusing anything but loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        raise ValueError(f"expected an http(s):// URL with a host, got {url!r}")
    host = require_loopback(parts.hostname)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return host, parts.port or (443 if parts.scheme == "https" else 80), path


def free_loopback_port() -> int:
    """Ask the kernel for a loopback port that is free right now.

    There is a short window before the caller binds it; on a test machine that is good enough and
    far safer than fixed ports that collide between parallel runs.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, *, host_header: str | None = None, timeout: float = 2.0) -> tuple[int, str]:
    """One GET on a fresh connection; returns (status, stripped body)."""
    host, port, path = split_loopback_url(url)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        if host_header is not None:
            headers["Host"] = host_header
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        connection.close()


def wait_for_body(url: str, body: str, *, host_header: str | None = None, timeout: float = 20.0) -> None:
    """Poll ``url`` until it answers 200 with ``body``; a container or proxy is up only then."""
    deadline = time.monotonic() + timeout
    last: str = "no answer yet"
    while time.monotonic() < deadline:
        try:
            status, text = http_get(url, host_header=host_header, timeout=1.0)
        except OSError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if status == 200 and text == body:
                return
            last = f"HTTP {status}: {text[:80]!r}"
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {body!r} within {timeout:.0f}s (last: {last})")
