"""codeb-state, the server-side tool, run as a real program against a temp registry."""

import base64
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from codeb_infra.remote import codeb_state

TOOL = [sys.executable, str(Path(codeb_state.__file__))]


def run(*args):
    return subprocess.run([*TOOL, *args], capture_output=True, text=True, timeout=30)


def b64(obj):
    return base64.b64encode(json.dumps(obj).encode()).decode()


def put(registry, record, expect):
    return run(
        "put-slots",
        "--registry",
        str(registry),
        "--project",
        "app",
        "--env",
        "production",
        "--expect",
        expect,
        "--record",
        b64(record),
    )


def test_compare_and_swap(tmp_path):
    first = {"blue": {"state": "deployed"}}
    assert put(tmp_path, first, "none").returncode == 0
    data = json.loads((tmp_path / "slots.json").read_text())
    assert data["slots"]["app"]["production"] == first
    # a writer that planned from the empty registry loses and is told why
    stale = put(tmp_path, {"blue": {"state": "active"}}, "none")
    assert stale.returncode == codeb_state.EXIT_CONFLICT and "changed since this run read it" in stale.stderr
    assert json.loads((tmp_path / "slots.json").read_text())["slots"]["app"]["production"] == first
    # writing what is already there succeeds whatever the expectation
    assert put(tmp_path, first, "bogus").returncode == 0
    assert put(tmp_path, {"blue": {"state": "active"}}, codeb_state.digest(first)).returncode == 0


def test_other_projects_are_kept(tmp_path):
    put(tmp_path, {"x": 1}, "none")
    run(
        "put-slots",
        "--registry",
        str(tmp_path),
        "--project",
        "other",
        "--env",
        "staging",
        "--expect",
        "none",
        "--record",
        b64({"y": 2}),
    )
    slots = json.loads((tmp_path / "slots.json").read_text())["slots"]
    assert slots == {"app": {"production": {"x": 1}}, "other": {"staging": {"y": 2}}}
    assert not list(tmp_path.glob(".tmp-*"))


def test_lock_is_exclusive_names_its_holder_and_can_be_broken(tmp_path):
    args = ["--dir", str(tmp_path), "--project", "app", "--env", "production"]
    assert run("lock", *args, "--holder", "run A").returncode == 0
    second = run("lock", *args, "--holder", "run B")
    assert second.returncode == codeb_state.EXIT_LOCKED
    assert "locked by run A since" in second.stderr
    assert run("unlock", *args, "--holder", "run B").returncode == codeb_state.EXIT_LOCKED
    assert run("lock", *args, "--holder", "run B", "--break-lock").returncode == 0
    assert run("unlock", *args, "--holder", "run B").returncode == 0
    assert not (tmp_path / "app.production.lock").exists()


def test_lock_wait_gets_the_lock_once_released(tmp_path):
    args = ["--dir", str(tmp_path), "--project", "app", "--env", "production"]
    assert run("lock", *args, "--holder", "A").returncode == 0
    timer = threading.Timer(0.5, lambda: run("unlock", *args, "--holder", "A"))
    timer.start()
    assert run("lock", *args, "--holder", "B", "--wait", "10").returncode == 0
    timer.join()


@pytest.fixture
def server():
    asked = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            if self.path == "/warming":  # ready from its third answer on
                self.send_response(200 if asked.count("/warming") >= 3 else 503)
            else:
                self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_health(server):
    assert run("health", "--url", f"{server}/health", "--timeout", "3").returncode == 0
    failed = run("health", "--url", f"{server}/missing", "--interval", "0.2", "--timeout", "1")
    assert failed.returncode == 1 and "HTTP 404" in failed.stderr


def test_health_polls_again_at_once_before_backing_off_to_its_interval(server):
    """An app a moment from ready is seen then, not one interval (here 60 s, beyond this test's
    30 s limit on the tool) later."""
    ready = run("health", "--url", f"{server}/warming", "--interval", "60", "--timeout", "120")
    assert ready.returncode == 0 and "answered 200" in ready.stdout


def test_remove_drops_only_that_record(tmp_path):
    put(tmp_path, {"x": 1}, "none")
    run(
        "put-slots",
        "--registry",
        str(tmp_path),
        "--project",
        "other",
        "--env",
        "staging",
        "--expect",
        "none",
        "--record",
        b64({"y": 2}),
    )
    removed = run(
        "put-slots",
        "--registry",
        str(tmp_path),
        "--project",
        "app",
        "--env",
        "production",
        "--expect",
        codeb_state.digest({"x": 1}),
        "--remove",
    )
    assert removed.returncode == 0, removed.stderr
    assert json.loads((tmp_path / "slots.json").read_text())["slots"] == {"other": {"staging": {"y": 2}}}


def put_project(registry, project, ports, expect="none"):
    record = {"domain": f"{project}.codeb.kr", "container_port": 3000, "health_path": "/health", "ports": ports}
    return run(
        "put-project",
        "--registry",
        str(registry),
        "--project",
        project,
        "--env",
        "production",
        "--expect",
        expect,
        "--record",
        b64(record),
    )


def test_a_port_another_project_took_meanwhile_is_refused(tmp_path):
    """Two new projects that planned from the same ssot.json: the second may not share a port."""
    assert put_project(tmp_path, "shop", {"blue": 4426, "green": 4427}).returncode == 0
    clash = put_project(tmp_path, "shop2", {"blue": 4427, "green": 4428})
    assert clash.returncode == codeb_state.EXIT_CONFLICT
    assert clash.stderr.startswith(f"{codeb_state.PORT_TAKEN}shop2/production: port 4427 was taken meanwhile")
    assert set(json.loads((tmp_path / "ssot.json").read_text())["projects"]) == {"shop"}
    assert put_project(tmp_path, "shop2", {"blue": 4428, "green": 4429}).returncode == 0
