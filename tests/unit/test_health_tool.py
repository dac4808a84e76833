"""codeb-health, the server-side reader, run as a real program against temp directories and a
loopback HTTP server (systemd and podman are read in the sandbox tests)."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

from codeb_infra.commands import health as health_commands
from codeb_infra.remote import codeb_health

TOOL = [sys.executable, str(Path(codeb_health.__file__))]


def run(*args: str) -> dict:
    result = subprocess.run([*TOOL, *args], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def test_read_reports_pointers_that_answer_sites_and_locks(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    registry, sites, upstreams, locks = (tmp_path / d for d in ("registry", "sites", "upstreams", "locks"))
    for d in (registry, sites, upstreams, locks):
        d.mkdir()
    (registry / "ssot.json").write_text('{"version": 1, "projects": {}}')
    (sites / "demo-production.caddy").write_text("x")
    (upstreams / "demo-production.active").write_text(f"127.0.0.1:{listener.getsockname()[1]}\n")
    (upstreams / "demo-production.preview").write_text(f"127.0.0.1:{closed_port}\n")
    (locks / "demo.production.lock").write_text('{"holder": "deploy by ci", "since": "2026-12-01T10:00:00+00:00"}')
    try:
        found = run(
            "read",
            "--disk",
            str(tmp_path),
            "--registry",
            str(registry),
            "--sites",
            str(sites),
            "--upstreams",
            str(upstreams),
            "--locks",
            str(locks),
            "--quadlet",
            str(tmp_path / "none"),
        )
    finally:
        listener.close()
    app = found["app"]
    assert app["projects"] == {"version": 1, "projects": {}} and app["slots"] is None
    assert app["pointers"]["demo-production.active"]["answers"] is True
    assert app["pointers"]["demo-production.preview"]["answers"] is False
    assert app["sites"] == ["demo-production"] and app["quadlet"] == []
    assert app["locks"]["demo.production"]["holder"] == "deploy by ci"
    assert 0 <= found["disks"][str(tmp_path)]["used_percent"] <= 100
    assert found["memory"]["total_bytes"] > 0 and abs(found["time"] - __import__("time").time()) < 30


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.headers["Host"] == "demo.codeb.test" and self.path == "/health"
        self.send_response(200 if ok else 404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_probe_sends_the_domain_as_host():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        found = run(
            "probe",
            "--scheme",
            "http",
            "--port",
            str(server.server_address[1]),
            "--target",
            "demo.codeb.test,/health",
            "--target",
            "other.codeb.test,/health",
        )
    finally:
        server.shutdown()
    assert [p["status"] for p in found["probes"]] == [200, 404]


def test_commands_never_fail_when_the_tool_is_missing():
    line = str(health_commands.read(units=["caddy.service"], disks=["/"]))
    assert line.startswith(f"if [ -f {health_commands.HEALTH_TOOL} ]") and "--unit caddy.service --disk /" in line
    out = subprocess.run(
        line.replace(health_commands.HEALTH_TOOL, "/nonexistent/codeb-health"),
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {"error": "codeb-health is not installed on this server"}
