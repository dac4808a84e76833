"""Clients of the codeb API for tests: MCP over streamable HTTP with the official SDK's client, and
an httpx transport that sends a domain's requests to a pinned address (SNI and Host keep the domain)."""

from __future__ import annotations

import ssl
from typing import Any

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


class PinnedTransport(httpx2.AsyncHTTPTransport):
    """Every request goes to ``address:port``; TLS is verified for the URL's own host name."""

    def __init__(self, address: str, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._address, self._port = address, port

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.extensions = {**request.extensions, "sni_hostname": request.url.host}
        request.url = request.url.copy_with(host=self._address, port=self._port)
        return await super().handle_async_request(request)


def mcp_session(
    url: str,
    key: str,
    *,
    pinned: tuple[str, int] | None = None,
    root_pem: str | None = None,
    calls: list[tuple[str, dict[str, Any]]] = (),
) -> dict[str, Any]:
    """Initialize an MCP session at ``url`` with ``key`` as Bearer, list the tools, make ``calls``."""

    async def run() -> dict[str, Any]:
        verify: ssl.SSLContext | bool = ssl.create_default_context(cadata=root_pem) if root_pem else True
        transport = PinnedTransport(*pinned, verify=verify) if pinned else None
        async with (
            httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {key}"},
                transport=transport,
                verify=verify,
                timeout=httpx2.Timeout(120),
            ) as client,
            streamable_http_client(url, http_client=client) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = (await session.list_tools()).tools
            results = [await session.call_tool(name, arguments) for name, arguments in calls]
        return {"tools": {t.name: t for t in tools}, "results": results}

    return anyio.run(run)
