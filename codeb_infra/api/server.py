"""The API app: `GET /health`, `POST /api/tool`, `/mcp` and the dashboard's pages, each request checked in one order
(body size, failed-key limit, key, JSON, tool, role, params, project scope, lock) and written to the
audit log whatever its outcome; flows run in worker processes so a long deploy blocks no read."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from codeb_infra.api import worker
from codeb_infra.api.audit import AuditLog
from codeb_infra.api.config import MAX_BODY, ApiPaths
from codeb_infra.api.keys import KeyRecord, KeyRejected, KeyStore, Role, role
from codeb_infra.api.tools import TOOLS, Tool
from codeb_infra.domain.errors import CodebError

log = logging.getLogger("codeb.api")
FAILED_KEYS_LIMIT = 10
FAILED_KEYS_WINDOW = 60.0
WORKER_TIMEOUT = 900.0


class _Worker:
    """A started worker process whose stderr is drained from the start into a short tail (a full
    pipe never stalls it, a failure can be logged) up to the line a one-shot worker writes before
    its answer; the process is reaped once its stderr closes."""

    def __init__(self, command: list[str], tail: int) -> None:
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            close_fds=True,
        )
        self.tail: deque[str] = deque(maxlen=tail)
        self._said_all = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.rstrip("\n") == worker.END_OF_OUTPUT:
                self._said_all.set()
            else:
                self.tail.append(line)
        self._said_all.set()
        self.process.wait()


class _Reader(_Worker):
    """A long-lived worker (`--many`) answering read calls one at a time."""

    def __init__(self, command: list[str]) -> None:
        super().__init__([*command, "--many"], tail=200)
        self.ready = False

    def call(self, job: dict[str, Any]) -> tuple[dict[str, Any], str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if not self.ready:
            self.ready = self.process.stdout.readline().strip() == "ready"
        self.tail.clear()
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BrokenPipeError("reader exited")
        return json.loads(line), "".join(self.tail)


class _OneShot(_Worker):
    """A started worker waiting to serve one change. It writes the line that ends its stderr before
    it answers, so the call returns with the answer and all it printed, without waiting for the
    process to wind down."""

    def __init__(self, command: list[str]) -> None:
        super().__init__(command, tail=400)

    def call(self, job: dict[str, Any], timeout: float) -> tuple[dict[str, Any], str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        stdout = self.process.stdout
        lines: list[str] = []
        reading = threading.Thread(target=lambda: lines.extend([stdout.readline(), stdout.readline()]), daemon=True)
        reading.start()
        try:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        reading.join(timeout)
        if reading.is_alive():
            self.process.kill()
            return {"ok": False, "status": 500, "error": f"{job['tool']} took longer than {timeout:.0f}s"}, "".join(
                self.tail
            )
        self._said_all.wait(timeout=5)
        if not lines or lines[0].strip() != "ready":
            return {"ok": False, "status": 500, "error": "worker did not start"}, "".join(self.tail)
        try:
            return json.loads(lines[1]), "".join(self.tail)
        except (IndexError, json.JSONDecodeError):
            return {"ok": False, "status": 500, "error": "worker gave no answer"}, "".join(self.tail)


class WorkerPool:
    """Started worker processes (see worker.py): one-shot workers waiting for a change each, and a
    few long-lived readers for read-only tools."""

    def __init__(self, size: int = 2, readers: int = 2, command: list[str] | None = None) -> None:
        self.size = size
        self.readers_wanted = readers
        self.command = command or [sys.executable, "-m", "codeb_infra.api.worker"]
        self._idle: deque[_OneShot] = deque()
        self._readers: queue.Queue[_Reader] = queue.Queue()
        self._lock = threading.Lock()

    def fill(self) -> None:
        self.fill_idle()
        for _ in range(self.readers_wanted):
            self._readers.put(_Reader(self.command))

    def call(self, job: dict[str, Any], *, read_only: bool = False) -> tuple[dict[str, Any], str]:
        """Blocking: one call; its answer and what the worker printed on stderr meanwhile."""
        if read_only and self.readers_wanted:
            return self._read(job)
        with self._lock:
            one_shot = self._idle.popleft() if self._idle else _OneShot(self.command)
        try:
            return one_shot.call(job, WORKER_TIMEOUT)
        finally:
            # Started after the call, so its imports do not compete with the call for the CPU.
            self.fill_idle()

    def fill_idle(self) -> None:
        with self._lock:
            while len(self._idle) < self.size:
                self._idle.append(_OneShot(self.command))

    def _read(self, job: dict[str, Any]) -> tuple[dict[str, Any], str]:
        reader = self._readers.get()
        try:
            return reader.call(job)
        except (BrokenPipeError, OSError, json.JSONDecodeError):
            reader.process.kill()
            reader = _Reader(self.command)
            return {"ok": False, "status": 500, "error": "the reader process failed; try again"}, ""
        finally:
            self._readers.put(reader)

    def close(self) -> None:
        with self._lock:
            while self._idle:
                one_shot = self._idle.popleft()
                one_shot.process.kill()
                one_shot.process.wait()
        while not self._readers.empty():
            reader = self._readers.get()
            reader.process.kill()
            reader.process.wait()


@dataclass
class Outcome:
    status: int
    payload: dict[str, Any]
    audit: str  # allowed / denied / invalid / failed


def _allowed_read(row: dict[str, Any]) -> bool:
    tool = TOOLS.get(row.get("tool") or "")
    return row["outcome"] == "allowed" and tool is not None and tool.role is Role.VIEW


class ControlPlane:
    """Everything a request goes through, for /api/tool and /mcp alike."""

    def __init__(self, paths: ApiPaths, pool: WorkerPool | None = None) -> None:
        self.paths = paths
        self.keys = KeyStore(paths.keys_db, paths.key_secret)
        self.audit = AuditLog(paths.audit_db)
        self.pool = pool or WorkerPool()
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._busy: dict[tuple[str, str], str] = {}
        self._busy_lock = threading.Lock()
        self._reads: dict[str, asyncio.Future[tuple[dict[str, Any], str]]] = {}

    # -- the failed-key limit per source address
    def _blocked(self, source: str) -> bool:
        window = self._failures[source]
        cutoff = time.monotonic() - FAILED_KEYS_WINDOW
        while window and window[0] < cutoff:
            window.popleft()
        return len(window) >= FAILED_KEYS_LIMIT

    def _failed_key(self, source: str) -> None:
        self._failures[source].append(time.monotonic())

    def sign_in(self, key: str | None, source: str) -> KeyRecord:
        """The key's record, under the failed-key limit of its source (a request's key, or the key
        a dashboard sign-in exchanges for a session)."""
        if self._blocked(source):
            raise KeyRejected(f"too many failed API keys from {source}; try again in a minute")
        try:
            return self.keys.authenticate(key)
        except KeyRejected:
            self._failed_key(source)
            raise

    async def handle(
        self,
        *,
        body: bytes | None,
        key: str | None,
        source: str,
        via: str,
        parsed: dict[str, Any] | None = None,
        too_large: bool = False,
        principal: KeyRecord | None = None,
        record_reads: bool = True,
    ) -> tuple[int, dict[str, Any]]:
        """One request: ``body`` is the raw JSON (None with ``parsed``, the call MCP or the dashboard
        already decoded); ``principal`` is the key a dashboard session stands for, already checked.
        Without ``record_reads`` (a dashboard part refreshing itself) an allowed read leaves no
        audit row; a change, a refusal or a failure always does."""
        request_id = uuid.uuid4().hex[:16]
        started = time.monotonic()
        row: dict[str, Any] = {"request_id": request_id, "source": source, "actor": via, "params": {}}
        try:
            outcome = await self._decide(body, key, source, parsed, row, too_large, principal)
        except Exception:
            log.exception("request %s failed unexpectedly", request_id)
            outcome = Outcome(500, {"ok": False, "error": f"internal error (request id {request_id})"}, "failed")
        outcome.payload["request_id"] = request_id
        if not outcome.payload["ok"]:
            row["error"] = outcome.payload["error"][:500]
        row.update(outcome=outcome.audit, status=outcome.status, duration_ms=int((time.monotonic() - started) * 1000))
        if record_reads or not _allowed_read(row):
            await asyncio.to_thread(self.audit.append, **row)
        log.info(
            "request %s %s key=%s tool=%s -> %s %s",
            request_id,
            via,
            row.get("key_id"),
            row.get("tool"),
            outcome.status,
            outcome.audit,
        )
        return outcome.status, outcome.payload

    async def _decide(
        self,
        body: bytes | None,
        key: str | None,
        source: str,
        parsed: dict[str, Any] | None,
        row: dict[str, Any],
        too_large: bool,
        principal: KeyRecord | None,
    ) -> Outcome:
        request_id = row["request_id"]
        if too_large:
            return _error(413, f"request body larger than {MAX_BODY} bytes", "invalid")
        if principal is not None:
            record = principal
        else:
            if self._blocked(source):
                return _error(429, f"too many failed API keys from {source}; try again in a minute", "denied")
            try:
                record = await asyncio.to_thread(self.sign_in, key, source)
            except KeyRejected as error:
                return _error(401, str(error), "denied")
        row.update(key_id=record.id, key_name=record.name, role=record.role.value)
        if parsed is None:
            try:
                parsed = json.loads(body or b"")
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _error(400, 'malformed JSON: send {"tool": NAME, "params": {...}}', "invalid")
        if not isinstance(parsed, dict) or not isinstance(parsed.get("tool"), str):
            return _error(400, 'expected a JSON object {"tool": NAME, "params": {...}}', "invalid")
        name, params = parsed["tool"], parsed.get("params", {})
        row["tool"] = name[:64]
        if not isinstance(params, dict):
            return _error(400, "params must be a JSON object", "invalid")
        row["params"] = params
        row["project"], row["env"] = (
            _str(params.get("project")),
            _str(params.get("env", "production" if "project" in params else None)),
        )
        tool = TOOLS.get(name)
        if tool is None:
            return _error(400, f"unknown tool {name[:64]!r}: use one of {', '.join(sorted(TOOLS))}", "invalid")
        if not record.may(tool.role):
            return _error(403, f"a {record.role.value} key may not use {tool.name} (needs {tool.role.value})", "denied")
        try:
            model, request = tool.validate(params)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in error.errors())
            return _error(400, f"invalid params for {tool.name}: {problems}", "invalid")
        except CodebError as error:
            return _error(400, str(error), "invalid")
        project = getattr(request, "project", None) or getattr(model, "project", None)
        if project is not None and not record.covers(project):
            return _error(403, f"this key is limited to {', '.join(record.projects)}; not {project}", "denied")
        if project is None and record.projects and tool.role is Role.ADMIN:
            return _error(403, f"a key limited to projects may not use {tool.name}", "denied")
        if tool.in_api:
            return await asyncio.to_thread(self._in_api, tool, model, record)
        return await self._in_worker(tool, params, request, record, request_id)

    async def _in_worker(
        self, tool: Tool, params: dict[str, Any], request: Any, record: KeyRecord, request_id: str
    ) -> Outcome:
        lock_key = (request.project, request.env.value) if tool.mutates and request is not None else None
        if lock_key is not None:
            with self._busy_lock:
                holder = self._busy.get(lock_key)
                if holder is None:
                    self._busy[lock_key] = f"{tool.name} (request {request_id}, key {record.id})"
            if holder is not None:
                return _error(
                    409, f"{lock_key[0]}/{lock_key[1]} is busy with {holder}; try again when it is done", "denied"
                )
        try:
            job = {
                "tool": tool.name,
                "params": params,
                "request_id": request_id,
                "inventory": self.paths.inventory,
                "actor": f"key {record.id} ({record.name}, {record.role})",
            }
            answer, stderr = await (
                self._shared_read(job) if tool.read_only else asyncio.to_thread(self.pool.call, job, read_only=False)
            )
        finally:
            if lock_key is not None:
                with self._busy_lock:
                    self._busy.pop(lock_key, None)
        if answer.get("ok"):
            result: Any = answer.get("result")  # the tool's JSON result, shaped by the tool
            if tool.name == "list_projects" and record.projects:
                result = [entry for entry in result if record.covers(entry["project"])]
            return Outcome(200, {"ok": True, "result": result}, "allowed")
        locked = worker.LOCKED.search(stderr)
        if locked:
            return _error(409, locked.group(0).strip(), "denied")
        if stderr.strip() or answer.get("detail"):
            log.warning(
                "request %s: %s failed; worker said:\n%s%s",
                request_id,
                tool.name,
                stderr[-4000:],
                answer.get("detail", ""),
            )
        status = int(answer.get("status", 500))
        message = answer.get("error", "failed")
        if status >= 500:
            message = f"{message} (request id {request_id}; details in the API's journal)"
        return _error(status, message, "invalid" if status == 400 else "failed")

    async def _shared_read(self, job: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """A read that is already running for the same tool and params is joined, not repeated:
        twenty clients polling one project's status cost one read of the server."""
        key = json.dumps([job["tool"], job["params"]], sort_keys=True)
        running = self._reads.get(key)
        if running is None:
            running = asyncio.ensure_future(asyncio.to_thread(self.pool.call, job, read_only=True))
            self._reads[key] = running
            running.add_done_callback(lambda _: self._reads.pop(key, None))
        return await asyncio.shield(running)

    def _in_api(self, tool: Tool, model: Any, record: KeyRecord) -> Outcome:
        if tool.name == "audit_log":
            rows = self.audit.rows(
                project=model.project, since=model.since, projects=record.projects, limit=model.limit
            )
            return Outcome(200, {"ok": True, "result": rows}, "allowed")
        if tool.name == "keys_list":
            return Outcome(200, {"ok": True, "result": [k.as_dict() for k in self.keys.list()]}, "allowed")
        try:
            if tool.name == "keys_create":
                created, key = self.keys.create(
                    role=role(model.role),
                    projects=tuple(model.projects),
                    expires_days=model.expires_days,
                    name=model.name,
                )
                return Outcome(200, {"ok": True, "result": {**created.as_dict(), "key": key}}, "allowed")
            if tool.name == "keys_revoke":
                return Outcome(200, {"ok": True, "result": self.keys.revoke(model.id).as_dict()}, "allowed")
        except CodebError as error:
            return _error(400, str(error), "invalid")
        raise CodebError(f"tool {tool.name} has no API implementation")


def _str(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) else None


def _error(status: int, message: str, audit: str) -> Outcome:
    return Outcome(status, {"ok": False, "error": message}, audit)


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY (read no further)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def source_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def create_app(
    paths: ApiPaths | None = None,
    pool: WorkerPool | None = None,
    extra: Callable[[FastAPI, ControlPlane], None] | None = None,
) -> FastAPI:
    plane = ControlPlane(paths or ApiPaths.from_environ(), pool)
    app = FastAPI(title="codeb-api", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan(plane))
    app.state.plane = plane

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "service": "codeb-api"}

    @app.post("/api/tool")
    async def api_tool(request: Request) -> JSONResponse:
        body = await _read_limited(request)
        status, payload = await plane.handle(
            body=body,
            too_large=body is None,
            key=request.headers.get("x-api-key"),
            source=source_of(request),
            via="api",
        )
        return JSONResponse(payload, status_code=status, headers={"X-Request-Id": payload["request_id"]})

    if extra is not None:
        extra(app, plane)
    return app


def _lifespan(plane: ControlPlane) -> Callable[[FastAPI], Any]:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await asyncio.to_thread(plane.pool.fill)
        async with _mcp_session(app):
            yield
        plane.pool.close()

    return lifespan


def _mcp_session(app: FastAPI) -> Any:
    from contextlib import nullcontext

    manager = getattr(app.state, "mcp_session_manager", None)
    return manager.run() if manager is not None else nullcontext()


def main() -> None:
    """`python -m codeb_infra.api.server`: what the codeb-api unit runs (uvicorn on 127.0.0.1:9100)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from codeb_infra.api.dashboard import mount_dashboard
    from codeb_infra.api.mcp import mount_mcp

    def mount(app: FastAPI, plane: ControlPlane) -> None:
        mount_mcp(app, plane)
        mount_dashboard(app, plane)

    app = create_app(extra=mount)
    uvicorn.run(
        app,
        host=os.environ.get("CODEB_API_HOST", "127.0.0.1"),
        port=int(os.environ.get("CODEB_API_PORT", "9100")),
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="info",
    )


if __name__ == "__main__":
    main()
