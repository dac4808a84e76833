"""The web dashboard at https://api.{base_domain}/: server-rendered pages (Jinja2) with htmx for
the live parts. An API key signed in once becomes a server-side session (cookie HttpOnly, Secure,
SameSite=Strict); every POST carries the session's CSRF token (the sign-in form a token of its
own, matched against its own cookie); every read and change is a call of
the registry's tools through `ControlPlane.handle`, so roles, project scopes, locks, audit rows and
error messages are those of `POST /api/tool`."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from codeb_infra.api.keys import KeyRecord, KeyRejected, Role
from codeb_infra.api.server import ControlPlane, source_of
from codeb_infra.api.sessions import Session, SessionStore

COOKIE = "codeb_session"
# The sign-in form's own token, also in a cookie of its own: a sign-in POST from another site
# carries no such cookie (SameSite=Strict), so nobody can sign a browser in with their key.
SIGN_IN_COOKIE = "codeb_sign_in"
CSRF_HEADER = "x-csrf-token"
MAX_FORM = 64 * 1024
LOG_LINES = 20
HERE = Path(__file__).parent / "web"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ACTIONS = {"promote": "promote", "rollback": "rollback", "rollback-release": "rollback"}


@dataclass(frozen=True)
class Viewer:
    """Who a signed-in request is: the session, and the key it stands for (checked on each request)."""

    session_id: str
    session: Session
    record: KeyRecord

    @property
    def admin(self) -> bool:
        return self.record.role is Role.ADMIN

    @property
    def changes(self) -> bool:
        return self.record.may(Role.DEV)


@dataclass(frozen=True)
class Answer:
    """A tool's answer as the API gives it: the result, or the API's own error words."""

    status: int
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["when"] = _when
    environment.filters["tag"] = image_tag
    environment.filters["size"] = _size
    return environment


def _when(value: str | None) -> str:
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(value: int | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def image_tag(image: str | None) -> str:
    """The version part of an image reference (`registry/app:1.2` -> `1.2`)."""
    if not image:
        return "—"
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def release_version(release: dict[str, Any] | None) -> str:
    """What the dashboard calls a release's version: the app's own (its image label), else its tag."""
    if not release:
        return "—"
    return str(release.get("app_version") or image_tag(release.get("image")))


def grace_left(until: str | None, now: datetime) -> str | None:
    """`12m 30s` of a slot's grace period still to run, or None when none is running."""
    if not until:
        return None
    seconds = int((datetime.fromisoformat(until) - now).total_seconds())
    if seconds <= 0:
        return "ended"
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {seconds}s"


def project_row(entry: dict[str, Any], status: Answer, releases: Answer) -> dict[str, Any]:
    """One project/env line of the projects page, from its list entry, slot status and releases."""
    row: dict[str, Any] = {**entry, "error": status.error, "live": None, "preview": None, "last": None}
    by_number = {r["number"]: r for r in releases.result or []} if releases.ok else {}
    if releases.ok and releases.result:
        row["last"] = releases.result[-1]
    if not status.ok:
        row["health"] = "unknown"
        return row
    report = status.result
    active = report["active_slot"]
    row["preview_domain"] = report["preview_domain"]
    for slot, info in report["slots"].items():
        release = by_number.get(info.get("release"))
        shown = {"slot": slot, "number": info.get("release"), "version": release_version(release or info)}
        if slot == active:
            row["live"] = shown
            healthy = info["container"] == "running" and info["matches_record"]
            row["health"] = "healthy" if healthy else "unhealthy"
        elif info["state"] == "deployed":
            row["preview"] = shown
    row.setdefault("health", "no live slot")
    return row


def chart(drills: list[dict[str, Any]], width: int = 360, height: int = 120) -> dict[str, Any]:
    """The drill history as two SVG polylines (recovery point and recovery time, each scaled to
    its own maximum), oldest on the left."""
    points: dict[str, str] = {}
    peaks: dict[str, float] = {}
    usable = [d for d in drills if d.get("finished_at")]
    for series in ("recovery_point_seconds", "recovery_time_seconds"):
        values = [float(d.get(series) or 0) for d in usable]
        peak = max(values, default=0.0) or 1.0
        peaks[series] = max(values, default=0.0)
        step = width / max(len(values) - 1, 1)
        points[series] = " ".join(
            f"{i * step:.1f},{height - value / peak * (height - 10):.1f}" for i, value in enumerate(values)
        )
    return {"width": width, "height": height, "points": points, "peaks": peaks, "count": len(usable)}


def is_refresh(request: Request) -> bool:
    """A part of a page fetching itself again (htmx's polling), not a person opening a page: its
    reads would add an audit row every two seconds for as long as a tab stays open."""
    headers = request.headers
    return request.method == "GET" and headers.get("hx-request") == "true" and "hx-boosted" not in headers


def audit_matches(row: dict[str, Any], actor: str, outcome: str) -> bool:
    """The audit page's filters: actor matches the key's name or id or the channel (api, mcp,
    dashboard, cli); outcome is one of allowed/denied/invalid/failed."""
    if outcome and row.get("outcome") != outcome:
        return False
    if actor:
        wanted = actor.lower()
        return any(wanted in str(row.get(field) or "").lower() for field in ("key_name", "key_id", "actor"))
    return True


class Dashboard:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.sessions = SessionStore(plane.paths.sessions_db)
        self.templates = _templates()

    # -- sessions
    async def viewer(self, request: Request) -> Viewer | None:
        session_id = request.cookies.get(COOKIE)
        session = await asyncio.to_thread(self.sessions.find, session_id)
        if session is None or session_id is None:
            return None
        try:
            record = await asyncio.to_thread(self.plane.keys.record, session.key_id)
        except KeyRejected:
            await asyncio.to_thread(self.sessions.close, session_id)
            return None
        return Viewer(session_id, session, record)

    async def call(self, request: Request, viewer: Viewer, tool: str, **params: Any) -> Answer:
        status, payload = await self.plane.handle(
            body=None,
            parsed={"tool": tool, "params": params},
            key=None,
            principal=viewer.record,
            source=source_of(request),
            via="dashboard",
            record_reads=not is_refresh(request),
        )
        if payload["ok"]:
            return Answer(status, result=payload["result"])
        return Answer(status, error=payload["error"])

    def render(
        self, template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> Response:
        html = self.templates.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})

    def page(self, template: str, viewer: Viewer, **context: Any) -> Response:
        return self.render(template, viewer=viewer, csrf=viewer.session.csrf, **context)

    def audit_sign_in(
        self, request: Request, record: KeyRecord | None, outcome: str, status: int, error: str = ""
    ) -> None:
        self.plane.audit.append(
            request_id=uuid.uuid4().hex[:16],
            actor="dashboard",
            tool="sign_in",
            source=source_of(request),
            key_id=record.id if record else None,
            key_name=record.name if record else None,
            role=record.role.value if record else None,
            outcome=outcome,
            status=status,
            error=error or None,
        )

    # -- pages
    async def projects_table(self, request: Request, viewer: Viewer) -> list[dict[str, Any]] | Answer:
        listed = await self.call(request, viewer, "list_projects")
        if not listed.ok:
            return listed
        entries = listed.result

        async def one(entry: dict[str, Any]) -> dict[str, Any]:
            params = {"project": entry["project"], "env": entry["env"]}
            status, releases = await asyncio.gather(
                self.call(request, viewer, "slot_status", **params), self.call(request, viewer, "releases", **params)
            )
            return project_row(entry, status, releases)

        return list(await asyncio.gather(*(one(entry) for entry in entries)))

    async def slots(self, request: Request, viewer: Viewer, project: str, env: str) -> dict[str, Any]:
        status, releases = await asyncio.gather(
            self.call(request, viewer, "slot_status", project=project, env=env),
            self.call(request, viewer, "releases", project=project, env=env),
        )
        by_number = {r["number"]: r for r in releases.result or []} if releases.ok else {}
        now = datetime.now(UTC)
        slots = []
        if status.ok:
            for slot, info in status.result["slots"].items():
                release = by_number.get(info.get("release"))
                slots.append(
                    {
                        "slot": slot,
                        **info,
                        "version": release_version(release or info) if info.get("image") else "—",
                        "grace_left": grace_left(info.get("grace_until"), now) if info["state"] == "grace" else None,
                    }
                )
        return {"report": status, "releases": releases, "slots": slots, "project": project, "env": env}

    async def logs(self, request: Request, viewer: Viewer, project: str, env: str) -> dict[str, Answer]:
        slots = ("blue", "green")
        answers = await asyncio.gather(
            *(self.call(request, viewer, "logs", project=project, env=env, slot=s, lines=LOG_LINES) for s in slots)
        )
        return dict(zip(slots, answers, strict=True))


async def _form(request: Request) -> dict[str, str] | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


def _to_sign_in(request: Request) -> Response:
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": "/sign-in", **HEADERS})
    return RedirectResponse("/sign-in", status_code=303, headers=HEADERS)


def _refused(reason: str) -> Response:
    return Response(reason, status_code=403, media_type="text/plain", headers=HEADERS)


def mount_dashboard(app: FastAPI, plane: ControlPlane) -> None:
    """The dashboard's routes on the API's app; its static files (htmx, the style sheet) under /static."""
    board = Dashboard(plane)
    app.state.dashboard = board
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    async def posted(request: Request) -> tuple[Viewer | None, dict[str, str], Response | None]:
        """A POST's viewer and form, or the response refusing it (no session, no or a wrong CSRF token)."""
        viewer = await board.viewer(request)
        form = await _form(request)
        if form is None:
            return None, {}, Response("form too large", status_code=413, headers=HEADERS)
        if viewer is None:
            return None, form, _to_sign_in(request)
        if not viewer.session.csrf_matches(request.headers.get(CSRF_HEADER) or form.get("csrf")):
            return None, form, _refused("refused: this form's CSRF token is missing or wrong; reload the page")
        return viewer, form, None

    @app.get("/")
    async def root(request: Request) -> Response:
        viewer = await board.viewer(request)
        return RedirectResponse("/projects" if viewer else "/sign-in", status_code=303, headers=HEADERS)

    def sign_in_form(status: int = 200, error: str | None = None) -> Response:
        """The form with a fresh token, set in its cookie too."""
        token = secrets.token_urlsafe(32)
        response = board.render("sign_in.html", status=status, viewer=None, csrf=token, error=error)
        response.set_cookie(
            SIGN_IN_COOKIE, token, max_age=1800, httponly=True, secure=True, samesite="strict", path="/sign-in"
        )
        return response

    @app.get("/sign-in")
    async def sign_in_page(request: Request) -> Response:
        if await board.viewer(request):
            return RedirectResponse("/projects", status_code=303, headers=HEADERS)
        return sign_in_form()

    @app.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await _form(request) or {}
        given, expected = form.get("csrf", ""), request.cookies.get(SIGN_IN_COOKIE, "")
        if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            reason = "refused: this sign-in form has no token or a wrong one; reload the page"
            await asyncio.to_thread(board.audit_sign_in, request, None, "denied", 403, reason)
            return sign_in_form(403, reason)
        try:
            record = await asyncio.to_thread(plane.sign_in, form.get("key", "").strip(), source_of(request))
        except KeyRejected as error:
            await asyncio.to_thread(board.audit_sign_in, request, None, "denied", 401, str(error))
            return sign_in_form(401, str(error))
        session_id, session = await asyncio.to_thread(board.sessions.open, record.id)
        await asyncio.to_thread(board.audit_sign_in, request, record, "allowed", 303)
        response = RedirectResponse("/projects", status_code=303, headers=HEADERS)
        response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in", secure=True, httponly=True, samesite="strict")
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=int(board.sessions.lifetime.total_seconds()),
            httponly=True,
            secure=True,
            samesite="strict",
            path="/",
        )
        return response

    @app.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        viewer, _, refused = await posted(request)
        if refused is not None:
            return refused
        assert viewer is not None
        await asyncio.to_thread(board.sessions.close, viewer.session_id)
        response = RedirectResponse("/sign-in", status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    @app.get("/projects")
    async def projects(request: Request) -> Response:
        viewer = await board.viewer(request)
        if viewer is None:
            return _to_sign_in(request)
        table = await board.projects_table(request, viewer)
        template = "projects_table.html" if request.headers.get("hx-request") else "projects.html"
        return board.page(template, viewer, table=table, page="projects")

    @app.get("/p/{project}/{env}")
    async def project_page(request: Request, project: str, env: str) -> Response:
        viewer = await board.viewer(request)
        if viewer is None:
            return _to_sign_in(request)
        slots, logs = await asyncio.gather(
            board.slots(request, viewer, project, env), board.logs(request, viewer, project, env)
        )
        return board.page("project.html", viewer, page="projects", logs=logs, **slots)

    @app.get("/p/{project}/{env}/slots")
    async def project_slots(request: Request, project: str, env: str) -> Response:
        viewer = await board.viewer(request)
        if viewer is None:
            return _to_sign_in(request)
        slots = await board.slots(request, viewer, project, env)
        return board.page("project_slots.html", viewer, **slots)

    @app.post("/p/{project}/{env}/{action}")
    async def project_action(request: Request, project: str, env: str, action: str) -> Response:
        viewer, form, refused = await posted(request)
        if refused is not None:
            return refused
        assert viewer is not None
        tool = ACTIONS.get(action)
        if tool is None:
            return Response(f"unknown action {action[:32]!r}", status_code=404, headers=HEADERS)
        params: dict[str, Any] = {"project": project, "env": env}
        if action == "rollback-release":
            params["release"] = int(form["release"]) if form.get("release", "").isdigit() else form.get("release")
        answer = await board.call(request, viewer, tool, **params)
        logs = None if answer.ok else await board.logs(request, viewer, project, env)
        return board.page(
            "action_result.html",
            viewer,
            headers={"HX-Trigger": "slots-changed"},
            action=action,
            answer=answer,
            logs=logs,
            params=params,
        )

    @app.get("/backups")
    async def backups(request: Request) -> Response:
        viewer = await board.viewer(request)
        if viewer is None:
            return _to_sign_in(request)
        answer = await board.call(request, viewer, "backup_status")
        drills = (answer.result or {}).get("store", {}).get("drills", []) if answer.ok else []
        return board.page("backups.html", viewer, page="backups", answer=answer, drills=drills, chart=chart(drills))

    @app.get("/health-check")
    async def health(request: Request) -> Response:
        viewer = await board.viewer(request)
        if viewer is None:
            return _to_sign_in(request)
        answer = await board.call(request, viewer, "health_check")
        return board.page("health.html", viewer, page="health", answer=answer)

    @app.get("/audit")
    async def audit(request: Request, project: str = "", actor: str = "", outcome: str = "") -> Response:
        viewer = await board.viewer(request)
        if viewer is None:
            return _to_sign_in(request)
        filters = {"project": project, "actor": actor, "outcome": outcome}
        if not viewer.admin:
            answer = Answer(403, error=f"the audit page needs an admin key; this is a {viewer.record.role.value} key")
            return board.page("audit.html", viewer, page="audit", answer=answer, rows=[], filters=filters)
        answer = await board.call(request, viewer, "audit_log", **({"project": project} if project else {}), limit=500)
        rows = [r for r in answer.result or [] if audit_matches(r, actor, outcome)][::-1] if answer.ok else []
        return board.page("audit.html", viewer, page="audit", answer=answer, rows=rows, filters=filters)

    async def keys_page(request: Request, viewer: Viewer, created: Answer | None = None) -> Response:
        if not viewer.admin:
            answer = Answer(403, error=f"the keys page needs an admin key; this is a {viewer.record.role.value} key")
        else:
            answer = await board.call(request, viewer, "keys_list")
        return board.page("keys.html", viewer, page="keys", answer=answer, created=created)

    @app.get("/keys")
    async def keys(request: Request) -> Response:
        viewer = await board.viewer(request)
        if viewer is None:
            return _to_sign_in(request)
        return await keys_page(request, viewer)

    @app.post("/keys")
    async def keys_create(request: Request) -> Response:
        viewer, form, refused = await posted(request)
        if refused is not None:
            return refused
        assert viewer is not None
        params: dict[str, Any] = {
            "role": form.get("role", ""),
            "projects": [p.strip() for p in form.get("projects", "").split(",") if p.strip()],
        }
        if form.get("name", "").strip():
            params["name"] = form["name"].strip()
        if form.get("expires_days", "").strip():
            try:
                params["expires_days"] = float(form["expires_days"])
            except ValueError:
                params["expires_days"] = form["expires_days"]
        created = await board.call(request, viewer, "keys_create", **params)
        return await keys_page(request, viewer, created)

    @app.post("/keys/{key_id}/revoke")
    async def keys_revoke(request: Request, key_id: str) -> Response:
        viewer, _, refused = await posted(request)
        if refused is not None:
            return refused
        assert viewer is not None
        revoked = await board.call(request, viewer, "keys_revoke", id=key_id)
        return await keys_page(request, viewer, revoked if not revoked.ok else None)
