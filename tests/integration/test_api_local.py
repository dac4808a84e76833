"""The API on this machine: TestClient and a real uvicorn on loopback, real worker processes
running the flows' fact reads against `@local` with a registry in a temporary directory, and the
official MCP client over real HTTP. Nothing here changes a server; the sandbox tests do that."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from fastapi.testclient import TestClient

from codeb_infra.api.config import MAX_BODY, ApiPaths
from codeb_infra.api.keys import Role, make_secret
from codeb_infra.api.mcp import mount_mcp
from codeb_infra.api.server import WorkerPool, create_app
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.registry import ProjectEnv, Projects
from tests.support.api_client import mcp_session


class CountingPool(WorkerPool):
    """The real worker pool, counting the calls that reached a worker (a refused request must not)."""

    def __init__(self) -> None:
        super().__init__(size=1, readers=1)
        self.calls: list[str] = []

    def call(self, job: dict[str, Any], *, read_only: bool = False) -> tuple[dict[str, Any], str]:
        self.calls.append(job["tool"])
        return super().call(job, read_only=read_only)


def api_paths(tmp: Path) -> ApiPaths:
    codeb_dir = tmp / "codeb"
    (codeb_dir / "registry").mkdir(parents=True)
    entry = ProjectEnv(
        domain="shop.codeb.test", container_port=3000, health_path="/health", ports={Slot.BLUE: 4100, Slot.GREEN: 4101}
    )
    projects = (
        Projects()
        .with_entry("shop", Environment.PRODUCTION, entry)
        .with_entry("blog", Environment.PRODUCTION, entry.model_copy(update={"domain": "blog.codeb.test"}))
    )
    (codeb_dir / "registry" / "ssot.json").write_text(projects.model_dump_json())
    (tmp / "inventory.py").write_text(
        f"app = [('@local', {{'codeb_dir': {str(codeb_dir)!r}, 'base_domain': 'codeb.test'}})]\n"
    )
    make_secret(str(tmp / "secret"))
    return ApiPaths(
        keys_db=str(tmp / "keys.db"),
        audit_db=str(tmp / "audit.db"),
        key_secret=str(tmp / "secret"),
        inventory=str(tmp / "inventory.py"),
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any, CountingPool]]:
    pool = CountingPool()
    app = create_app(api_paths(tmp_path_factory.mktemp("api")), pool=pool, extra=mount_mcp)
    with TestClient(app) as client:
        yield client, app.state.plane, pool


def key(plane: Any, role: Role, *projects: str) -> str:
    return plane.keys.create(role=role, projects=projects)[1]


def call(client: TestClient, api_key: str | None, tool: str, **params: Any) -> httpx.Response:
    headers = {"X-API-Key": api_key} if api_key else {}
    return client.post("/api/tool", json={"tool": tool, "params": params}, headers=headers)


def test_health_needs_no_key(api: Any) -> None:
    client, _, _ = api
    assert client.get("/health").json()["ok"] is True


def test_reads_run_the_flows_in_a_worker_and_respect_the_key_scope(api: Any) -> None:
    client, plane, pool = api
    everything = call(client, key(plane, Role.VIEW), "list_projects").json()
    assert [p["project"] for p in everything["result"]] == ["blog", "shop"]
    scoped = call(client, key(plane, Role.VIEW, "shop"), "list_projects").json()
    assert [p["project"] for p in scoped["result"]] == ["shop"]
    status = call(client, key(plane, Role.VIEW, "shop"), "slot_status", project="shop")
    assert status.status_code == 200 and status.json()["result"]["slots"]["blue"]["port"] == 4100
    assert pool.calls[-3:] == ["list_projects", "list_projects", "slot_status"]


def test_refused_requests_each_leave_one_audit_row_and_reach_no_worker(api: Any) -> None:
    client, plane, pool = api
    view, dev_shop, admin = key(plane, Role.VIEW), key(plane, Role.DEV, "shop"), key(plane, Role.ADMIN)
    wrong = view[:-4] + ("AAAA" if not view.endswith("AAAA") else "BBBB")
    before_rows, before_calls = len(plane.audit.rows(limit=5000)), len(pool.calls)
    cases = [
        (client.post("/api/tool", content=b'{"tool": ', headers={"X-API-Key": admin}), 400, "malformed JSON"),
        (call(client, admin, "no_such_tool"), 400, "unknown tool"),
        (call(client, admin, "promote", project="../x"), 400, "invalid project name"),
        (call(client, admin, "promote", project="a;b"), 400, "invalid project name"),
        (call(client, admin, "promote", project="-rf"), 400, "invalid project name"),
        (
            call(client, admin, "deploy_project", project="shop", image="x", container_port="many"),
            400,
            "container_port",
        ),
        (call(client, admin, "promote", project="shop", shell="rm"), 400, "shell"),
        (call(client, view, "promote", project="shop"), 403, "view key may not use promote"),
        (call(client, dev_shop, "promote", project="blog"), 403, "limited to shop"),
        (call(client, dev_shop, "remove_project", project="shop"), 403, "needs admin"),
        (call(client, None, "list_projects"), 401, "no API key"),
        (call(client, wrong, "list_projects"), 401, "unknown API key"),
        (client.post("/api/tool", content=b" " * (MAX_BODY + 1), headers={"X-API-Key": admin}), 413, "larger than"),
    ]
    for response, status, said in cases:
        assert response.status_code == status, response.text
        assert response.json()["ok"] is False and said in response.json()["error"], response.text
    rows = plane.audit.rows(limit=5000)[before_rows:]
    assert [r["status"] for r in rows] == [status for _, status, _ in cases]
    assert [r["outcome"] for r in rows[-3:]] == ["denied", "denied", "invalid"]
    assert len(pool.calls) == before_calls
    assert not any(k in json.dumps(rows) for k in (view, dev_shop, admin, wrong))
    assert plane.audit.verify() is None


def test_many_failed_keys_from_one_address_get_429(tmp_path: Path) -> None:
    app = create_app(api_paths(tmp_path), pool=CountingPool())
    with TestClient(app) as client:
        good = key(app.state.plane, Role.VIEW)
        statuses = [call(client, "codeb_view_" + "x" * 43, "list_projects").status_code for _ in range(10)]
        assert statuses == [401] * 10
        assert call(client, good, "list_projects").status_code == 429
        assert app.state.plane.audit.rows()[-1]["outcome"] == "denied"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def uvicorn_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """`python -m codeb_infra.api.server` as the systemd unit runs it, on a loopback port."""
    tmp = tmp_path_factory.mktemp("uvicorn")
    paths = api_paths(tmp)
    port = free_port()
    env = {
        "CODEB_API_KEYS_DB": paths.keys_db,
        "CODEB_API_AUDIT_DB": paths.audit_db,
        "CODEB_API_KEY_SECRET": paths.key_secret,
        "CODEB_API_INVENTORY": paths.inventory,
        "CODEB_API_PORT": str(port),
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
    }
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "codeb_infra.api.server"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp / "server.log").read_text()
            time.sleep(0.3)
        from codeb_infra.api.keys import KeyStore

        yield f"http://127.0.0.1:{port}", KeyStore(paths.keys_db, paths.key_secret)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        assert "codeb_" not in (tmp / "server.log").read_text().replace("codeb-api", "")


def test_real_uvicorn_serves_the_api(uvicorn_api: tuple[str, Any]) -> None:
    base, keys = uvicorn_api
    _, view = keys.create(role=Role.VIEW)
    answer = httpx.post(f"{base}/api/tool", json={"tool": "list_projects"}, headers={"X-API-Key": view}, timeout=60)
    assert answer.status_code == 200 and [p["project"] for p in answer.json()["result"]] == ["blog", "shop"]
    assert answer.headers["x-request-id"] == answer.json()["request_id"]


def test_mcp_tools_come_from_the_registry_with_their_annotations(uvicorn_api: tuple[str, Any]) -> None:
    from codeb_infra.api.tools import TOOLS

    base, keys = uvicorn_api
    record, dev = keys.create(role=Role.DEV, projects=("shop",))
    found = mcp_session(f"{base}/mcp", dev, calls=[("list_projects", {}), ("promote", {"project": "blog"})])
    assert set(found["tools"]) == set(TOOLS)
    assert found["tools"]["slot_status"].annotations.read_only_hint is True
    assert found["tools"]["remove_project"].annotations.destructive_hint is True
    assert found["tools"]["deploy_project"].annotations.read_only_hint is False
    assert "image" in found["tools"]["deploy_project"].input_schema["required"]
    listed, refused = found["results"]
    assert not listed.is_error and "shop" in listed.content[0].text and "blog" not in listed.content[0].text
    assert refused.is_error and "limited to shop" in refused.content[0].text
    from codeb_infra.api.audit import AuditLog

    audit = AuditLog(str(Path(keys._db).with_name("audit.db")))
    rows = [r for r in audit.rows(limit=5000) if r["key_id"] == record.id]
    tools = [r["tool"] for r in rows]
    assert {"mcp initialize", "mcp tools/list"} <= set(tools), tools  # every request, not only tool calls
    assert tools.count("list_projects") == 1 and tools.count("promote") == 1, tools


def test_mcp_without_a_valid_bearer_is_401(uvicorn_api: tuple[str, Any]) -> None:
    base, _ = uvicorn_api
    response = httpx.post(
        f"{base}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": "Bearer codeb_admin_" + "y" * 43, "Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401 and response.json()["error"] == "unknown API key"


def test_env_and_release_tools_keep_roles_and_never_log_values(api: Any) -> None:
    client, plane, _ = api
    view, dev, admin = key(plane, Role.VIEW), key(plane, Role.DEV), key(plane, Role.ADMIN)
    for tool in ("env_list", "env_history", "env_set"):
        refused = (
            call(client, dev, tool, project="shop", values={"A": "b"})
            if tool == "env_set"
            else call(client, dev, tool, project="shop")
        )
        assert refused.status_code == 403 and "needs admin" in refused.json()["error"], refused.text
    assert call(client, view, "releases", project="shop").json() == {"ok": True, "result": [], "request_id": ANY}
    protected = call(client, admin, "env_set", project="shop", values={"DATABASE_URL": "postgresql://x"})
    assert protected.status_code == 400 and "master env" in protected.json()["error"], protected.text
    assert call(client, admin, "rollback", project="shop", release=0).status_code == 400

    secret = "s3cret-" + "value-in-env"
    call(
        client, admin, "env_set", project="shop", values={"GREETING": secret}
    )  # stored here; the copy to a backup server fails
    listed = call(client, admin, "env_list", project="shop").json()
    assert listed["ok"] and listed["result"]["names"] == ["GREETING"] and listed["result"]["version"] == 1, listed
    history = call(client, admin, "env_history", project="shop").json()["result"]
    assert history[-1]["actor"].startswith("key ") and history[-1]["actor"].endswith(", admin)"), (
        history
    )  # the key, not the API's user
    rows = plane.audit.rows(limit=5000)
    env_rows = [r for r in rows if r["tool"] == "env_set"]
    assert env_rows and "GREETING" in json.dumps(env_rows[-1]) and secret not in json.dumps(rows)
    assert plane.audit.verify() is None
