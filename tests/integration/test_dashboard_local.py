"""The dashboard's sessions and CSRF tokens on this machine: the API app under TestClient (over
https://, so the Secure cookie is sent), real worker processes reading a registry in a temporary
directory through `@local`, keys and sessions in temporary SQLite files. The sandbox test drives
the same pages in Chromium through Caddy."""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from codeb_infra.api.dashboard import COOKIE, mount_dashboard
from codeb_infra.api.keys import Role
from codeb_infra.api.server import WorkerPool, create_app
from tests.integration.test_api_local import api_paths

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    tmp = tmp_path_factory.mktemp("dash")
    paths = dataclasses.replace(api_paths(tmp), sessions_db=str(tmp / "state" / "sessions.db"))
    app = create_app(paths, pool=WorkerPool(size=1, readers=1), extra=mount_dashboard)
    with TestClient(app, base_url="https://api.codeb.test", follow_redirects=False) as client:
        yield client, app.state.plane


def sign_in_post(client: TestClient, key: str) -> Any:
    """POST the sign-in form as a browser does: after GET /sign-in, with its token and cookie."""
    form = client.get("/sign-in")
    return client.post("/sign-in", data={"key": key, "csrf": CSRF.search(form.text).group(1)})  # type: ignore[union-attr]


def signed_in(client: TestClient, plane: Any, role: Role, *projects: str) -> tuple[str, str, str]:
    """Sign in with a new key: the session cookie, the page's CSRF token and the key's id."""
    record, key = plane.keys.create(role=role, projects=projects)
    client.cookies.clear()
    response = sign_in_post(client, key)
    assert response.status_code == 303 and response.headers["location"] == "/projects"
    cookie = response.headers["set-cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Max-Age=28800", "Path=/"):
        assert attribute.lower() in cookie.lower(), cookie
    assert key not in cookie and key not in response.text
    session = client.cookies[COOKIE]
    page = client.get("/keys" if role is Role.ADMIN else "/projects")
    assert page.status_code == 200 and key not in page.text
    return session, CSRF.search(page.text).group(1), record.id  # type: ignore[union-attr]


def test_a_page_without_a_session_goes_to_sign_in_and_a_wrong_key_is_refused_in_the_apis_words(board: Any) -> None:
    client, _ = board
    client.cookies.clear()
    assert client.get("/projects").headers["location"] == "/sign-in"
    assert client.get("/projects", headers={"HX-Request": "true"}).headers["hx-redirect"] == "/sign-in"
    refused = sign_in_post(client, "codeb_dev_" + "x" * 43)
    assert (
        refused.status_code == 401
        and "unknown API key" in refused.text
        and COOKIE not in refused.headers.get("set-cookie", "")
    )
    assert "not a codeb API key" in sign_in_post(client, "nope").text


def test_the_session_store_keeps_hashes_only_in_a_0600_file(board: Any) -> None:
    client, plane = board
    session, _, _ = signed_in(client, plane, Role.VIEW)
    db = plane.paths.sessions_db
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    with sqlite3.connect(db) as connection:
        stored = [value for row in connection.execute("SELECT * FROM sessions") for value in row]
    assert session not in stored and all(session not in str(value) for value in stored)


def test_projects_come_from_the_tool_registry_and_a_view_key_gets_no_switch(board: Any) -> None:
    client, plane = board
    signed_in(client, plane, Role.VIEW, "shop")
    page = client.get("/projects").text
    assert 'data-project="shop"' in page and 'data-project="blog"' not in page  # the key's scope, as on the API
    project = client.get("/p/shop/production").text
    assert 'id="promote"' not in project and "a view key may not use logs (needs dev)" in project
    other = client.get("/p/blog/production").text
    assert "this key is limited to shop; not blog" in other
    signed_in(client, plane, Role.DEV)
    assert 'id="promote"' in client.get("/p/shop/production").text


def test_a_sign_in_post_without_its_forms_token_and_cookie_is_refused(board: Any) -> None:
    """A sign-in from another site (no cookie of the form) cannot sign this browser in with its key."""
    client, plane = board
    _, key = plane.keys.create(role=Role.ADMIN, projects=())
    client.cookies.clear()
    for data in ({"key": key}, {"key": key, "csrf": "forged"}):
        refused = client.post("/sign-in", data=data)
        assert refused.status_code == 403 and "sign-in form has no token or a wrong one" in refused.text
        assert COOKIE not in refused.cookies and COOKIE not in client.cookies
    client.get("/sign-in")
    forged = client.post("/sign-in", data={"key": key, "csrf": "not-the-cookies"})
    assert forged.status_code == 403 and COOKIE not in client.cookies
    assert sign_in_post(client, key).status_code == 303


def test_a_sessions_request_is_a_use_of_its_key(board: Any) -> None:
    client, plane = board
    _, _, key_id = signed_in(client, plane, Role.VIEW, "shop")
    with sqlite3.connect(plane.keys._db) as db:
        db.execute("UPDATE keys SET last_used = '2000-01-01T00:00:00+00:00' WHERE id = ?", (key_id,))
    assert client.get("/projects").status_code == 200
    listed = {k.id: k.last_used for k in plane.keys.list()}
    assert listed[key_id] is not None and listed[key_id] > "2000-01-02", listed[key_id]


def test_a_post_needs_the_sessions_csrf_token(board: Any) -> None:
    client, plane = board
    _, csrf, _ = signed_in(client, plane, Role.ADMIN)
    before = len(plane.keys.list())
    forged = client.post("/keys", data={"role": "view", "name": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    wrong = client.post("/keys", data={"role": "view", "csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")})
    assert wrong.status_code == 403
    assert len(plane.keys.list()) == before
    made = client.post("/keys", data={"role": "view", "name": "from the page", "csrf": csrf})
    assert made.status_code == 200 and len(plane.keys.list()) == before + 1
    shown = re.search(r"codeb_view_[A-Za-z0-9_-]{43}", made.text)
    assert shown and plane.keys.authenticate(shown.group(0)).name == "from the page"
    assert shown.group(0) not in client.get("/keys").text  # shown once
    header = client.post("/keys", data={"role": "nobody"}, headers={"X-CSRF-Token": csrf})
    assert header.status_code == 200 and "invalid role &#39;nobody&#39;: use admin, dev or view" in header.text


def test_a_view_key_promote_post_is_refused_by_the_apis_role_check(board: Any) -> None:
    client, plane = board
    _, csrf, _ = signed_in(client, plane, Role.VIEW)
    answer = client.post("/p/shop/production/promote", headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert "a view key may not use promote (needs dev)" in answer.text
    rows = [r for r in plane.audit.rows(limit=5) if r["tool"] == "promote"]
    assert [(r["actor"], r["outcome"], r["status"]) for r in rows][-1:] == [("dashboard", "denied", 403)]


def test_sign_out_ends_the_session_on_the_server(board: Any) -> None:
    client, plane = board
    session, csrf, _ = signed_in(client, plane, Role.ADMIN)
    assert client.get("/keys").status_code == 200
    out = client.post("/sign-out", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    client.cookies.set(COOKIE, session)
    again = client.get("/keys")
    assert again.status_code == 303 and again.headers["location"] == "/sign-in"


def test_a_revoked_key_ends_its_sessions(board: Any) -> None:
    client, plane = board
    session, _, key_id = signed_in(client, plane, Role.DEV)
    plane.keys.revoke(key_id)
    assert client.cookies[COOKIE] == session
    assert client.get("/projects").headers["location"] == "/sign-in"


def test_admin_pages_refuse_other_roles_and_static_files_are_served(board: Any) -> None:
    client, plane = board
    signed_in(client, plane, Role.DEV)
    assert "the audit page needs an admin key; this is a dev key" in client.get("/audit").text
    assert "the keys page needs an admin key; this is a dev key" in client.get("/keys").text
    htmx = client.get("/static/htmx-2.0.11.min.js")
    assert htmx.status_code == 200 and 'version:"2.0.11"' in htmx.text
    csp = client.get("/projects").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp


def test_the_backups_and_audit_pages_render_for_an_admin(board: Any) -> None:
    client, plane = board
    signed_in(client, plane, Role.ADMIN)
    backups = client.get("/backups")
    assert backups.status_code == 200 and "<h2>Restore drills</h2>" in backups.text
    audit = client.get("/audit", params={"outcome": "denied", "actor": "dashboard"})
    assert audit.status_code == 200 and "a view key may not use promote (needs dev)" in audit.text
    assert "sign_in" not in client.get("/audit", params={"outcome": "denied", "actor": "api"}).text


def test_a_page_refreshing_itself_leaves_no_audit_row_but_a_refused_read_does(board: Any) -> None:
    """Opening a page is recorded; htmx's polling of it every 2 s is not, unless it is refused."""
    client, plane = board
    _, _, key_id = signed_in(client, plane, Role.VIEW, "shop")

    def rows() -> list[dict[str, Any]]:
        return [r for r in plane.audit.rows(limit=100000) if r.get("key_id") == key_id]

    before = len(rows())
    assert client.get("/p/shop/production/slots").status_code == 200
    opened = len(rows())
    assert opened > before  # a person's read, recorded
    refresh = {"HX-Request": "true", "HX-Trigger": "slots"}
    for _ in range(3):
        assert client.get("/p/shop/production/slots", headers=refresh).status_code == 200
        assert client.get("/projects", headers=refresh).status_code == 200
    assert len(rows()) == opened
    client.get("/p/blog/production/slots", headers=refresh)
    refused = rows()[opened:]
    assert refused and all(r["outcome"] == "denied" and r["project"] == "blog" for r in refused), refused
