"""The same tools over MCP at `/mcp` (streamable HTTP, the official `mcp` SDK's `MCPServer`),
generated from the one registry: each tool's arguments are its params model's fields, its
annotations say read-only or destructive, and a call goes through the same `ControlPlane.handle`
as `POST /api/tool` (same key, given as a Bearer token; same checks; same audit row)."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import uuid
from typing import Any

from fastapi import FastAPI
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from codeb_infra.api.keys import KeyRejected
from codeb_infra.api.server import ControlPlane, source_of
from codeb_infra.api.tools import TOOLS, Tool


def bearer(headers: Any) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _function(tool: Tool, plane: ControlPlane) -> Any:
    async def call(ctx: Context, **params: Any) -> Any:
        request = ctx.request_context.request
        assert request is not None  # served over streamable HTTP only, so every call has its request
        given = {k: v for k, v in params.items() if v is not None}
        status, payload = await plane.handle(
            body=None,
            parsed={"tool": tool.name, "params": given},
            key=bearer(request.headers),
            source=source_of(request),
            via="mcp",
        )
        if not payload["ok"]:
            raise ToolError(f"{status}: {payload['error']}")
        return payload["result"]

    fields = tool.params.model_fields
    parameters = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)] + [
        inspect.Parameter(
            field_name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=field.annotation,
            default=inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True),
        )
        for field_name, field in fields.items()
    ]
    call.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    call.__annotations__ = {"ctx": Context, **{n: f.annotation for n, f in fields.items()}}
    call.__name__ = tool.name
    return call


def mcp_server(plane: ControlPlane) -> MCPServer:
    server: MCPServer = MCPServer(name="codeb", instructions="Blue-green deploys on the team's own servers.")
    for tool in TOOLS.values():
        server.add_tool(
            _function(tool, plane),
            name=tool.name,
            description=tool.description,
            structured_output=False,
            annotations=ToolAnnotations(
                read_only_hint=tool.read_only,
                destructive_hint=tool.destructive,
                idempotent_hint=tool.read_only,
                open_world_hint=False,
            ),
        )
    return server


class BearerGate:
    """Refuses an MCP request without a valid key before the SDK sees it (401, one audit row)."""

    def __init__(self, app: Any, plane: ControlPlane) -> None:
        self.app = app
        self.plane = plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        key = bearer(request.headers)
        try:
            record = self.plane.keys.authenticate(key)
        except KeyRejected:
            status, payload = await self.plane.handle(body=b"", key=key, source=source_of(request), via="mcp")
            await JSONResponse(payload, status_code=status, headers={"WWW-Authenticate": "Bearer"})(
                scope, receive, send
            )
            return
        body = await request.body()
        started = time.monotonic()
        await self.app(scope, _replay(body, receive), send)
        for method in _methods(body):
            if method != "tools/call":  # a tool call has its row from ControlPlane.handle already
                await asyncio.to_thread(
                    self.plane.audit.append,
                    request_id=uuid.uuid4().hex[:16],
                    source=source_of(request),
                    actor="mcp",
                    key_id=record.id,
                    key_name=record.name,
                    role=record.role.value,
                    tool=f"mcp {method}",
                    outcome="allowed",
                    status=200,
                    duration_ms=int((time.monotonic() - started) * 1000),
                )


def _methods(body: bytes) -> list[str]:
    """The JSON-RPC methods an MCP request carries (one message or a batch)."""
    try:
        message = json.loads(body or b"null")
    except ValueError:
        return ["(not JSON)"]
    messages = message if isinstance(message, list) else [message]
    return [str(m.get("method") or "(response)")[:64] for m in messages if isinstance(m, dict)]


def _replay(body: bytes, then: Receive) -> Receive:
    """The request's body, already read for the audit, handed to the SDK as it came; after it,
    what the client sends next (its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def mount_mcp(app: FastAPI, plane: ControlPlane) -> None:
    server = mcp_server(plane)
    # Every call needs the key, and the API listens on loopback behind Caddy: the SDK's Host
    # check against DNS rebinding (for key-less local servers) would only refuse api.{base_domain}.
    starlette_app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    endpoint = next(r for r in starlette_app.routes if isinstance(r, Route) and r.path == "/mcp")
    app.router.routes.append(Route("/mcp", BearerGate(endpoint.app, plane), methods=["GET", "POST", "DELETE"]))
    app.state.mcp_session_manager = server.session_manager
