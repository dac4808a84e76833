"""Ask Caddy for a domain the way a browser would, without DNS: connect to a given address, send
the domain as SNI and Host, and verify TLS against a given root certificate."""

from __future__ import annotations

import http.client
import socket
import ssl

CADDY_LOCAL_ROOT = "/var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt"


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``address:port`` while TLS and Host speak of ``domain``."""

    def __init__(self, domain: str, address: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(domain, port, context=context, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def get(
    domain: str,
    *,
    address: str,
    port: int,
    https: bool,
    root_pem: str | None = None,
    path: str = "/",
    timeout: float = 5.0,
) -> tuple[int, str]:
    """One GET of ``https://domain/path`` (or http) sent to ``address:port``; returns (status, body)."""
    if https:
        context = ssl.create_default_context(cadata=root_pem) if root_pem else ssl.create_default_context()
        connection: http.client.HTTPConnection = PinnedHTTPSConnection(domain, address, port, context, timeout)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": domain, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        connection.close()
