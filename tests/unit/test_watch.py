"""The watch after a promote: when a release fails it (the pure verdict), what it counts in Caddy's
access log, the rollback the promote plans for it, and the server-side tool run for real against a
local HTTP server, a temp registry, pointer files, the real codeb-state switch and a real audit log."""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codeb_infra.api.audit import AuditLog
from codeb_infra.commands import watch as watch_commands
from codeb_infra.config.app import HostSettings
from codeb_infra.domain import decisions, plans, slots
from codeb_infra.domain import watch as watch_domain
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Slot
from codeb_infra.domain.registry import Projects
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.remote import codeb_health, codeb_state, codeb_watch
from codeb_infra.remote.codeb_watch import AccessLog, count_answers, verdict
from tests.unit.test_decisions import ENV, GRACE, NOW, PATHS, deployed, live_of, one_release

LIMITS = {"max_failures": 3, "max_5xx": 5.0, "min_requests": 10}


@pytest.mark.parametrize(
    ("failing", "requests", "errors", "fails"),
    [
        (0, 0, 0, False),
        (2, 0, 0, False),  # two failed checks in a row are not yet a verdict
        (3, 0, 0, True),
        (0, 100, 5, False),  # exactly 5 % is not above 5 %
        (0, 100, 6, True),
        (0, 9, 9, False),  # fewer answers than min_requests: no share yet
        (0, 10, 1, True),
    ],
)
def test_verdict_fails_on_health_in_a_row_or_a_5xx_share_above_the_limit(failing, requests, errors, fails):
    reason = verdict(failing, "HTTP 500", requests, errors, **LIMITS)
    assert (reason is not None) is fails
    if failing >= 3:
        assert reason == "health path failed 3 checks in a row (last: HTTP 500)"
    elif fails:
        assert "were 5xx (over 5%)" in reason


def log_line(host, status):
    return json.dumps({"request": {"host": host, "uri": "/"}, "status": status})


def test_answers_are_counted_for_the_domain_only_and_garbage_is_skipped():
    lines = [
        log_line("shop.codeb.kr", 200),
        log_line("shop.codeb.kr:443", 502),
        log_line("other.kr", 500),
        "not json",
        json.dumps({"status": 500}),
        log_line("WWW.shop.kr", 503),
    ]
    assert count_answers(lines, {"shop.codeb.kr", "www.shop.kr"}) == (3, 2)


def test_access_log_reads_only_new_complete_lines_and_starts_over_when_rolled(tmp_path):
    path = tmp_path / "a.log"
    path.write_text(log_line("a", 200) + "\n")
    log = AccessLog(str(path))
    assert log.read() == []  # what was there before the watch began is not counted
    with path.open("a") as handle:
        handle.write(log_line("a", 500) + "\n" + '{"half')
    assert [json.loads(line)["status"] for line in log.read()] == [500]
    with path.open("a") as handle:
        handle.write('": 1}\n')
    assert log.read() == ['{"half": 1}']
    path.write_text(log_line("a", 201) + "\n")  # rolled: a new, shorter file
    assert [json.loads(line)["status"] for line in log.read()] == [201]


def promoted_twice():
    """v1 active in blue, v2 deployed in green: the live state before the second promote."""
    first, entry = one_release()
    live_pair = slots.promoted(first, now=NOW, grace=GRACE)
    second = deployed("localhost/shop:v2", live_pair, Projects().with_entry("shop", ENV, entry))
    return live_of(second.deployed, entry, pointers=plans.pointer_targets(live_pair, entry)), entry


def test_the_fallback_is_the_rollback_a_codeb_rollback_right_after_the_promote_would_plan():
    live, entry = promoted_twice()
    promote = decisions.plan_promote(live, now=NOW, grace=GRACE)
    fallback = watch_domain.fallback(live, promote, now=NOW, grace=GRACE)
    after = live_of(promote.wanted, entry, pointers=plans.pointer_targets(promote.wanted, entry))
    by_hand = decisions.plan_rollback(after, to=None, now=NOW, grace=GRACE)
    assert fallback is not None and fallback.wanted.active is Slot.BLUE
    assert (fallback.wanted, fallback.expect, fallback.pointers) == (by_hand.wanted, by_hand.expect, by_hand.pointers)
    # the switch's compare-and-swap expects exactly the record the promote writes
    assert fallback.expect == codeb_state.digest(decisions.record_of(promote.wanted))
    assert fallback.pointers[0] == (PATHS["active"], f"127.0.0.1:{entry.ports[Slot.BLUE]}")
    shown = watch_domain.announced(promote, fallback, 10, "codeb-watch-shop-production").plan.lines()
    assert shown[1:-1] == promote.plan.lines()[1:] and shown[-1].startswith(
        "  [app] watch codeb-watch-shop-production: - -> 10 min (rolls back to blue if the release fails"
    )


def test_a_first_promote_has_nothing_to_fall_back_to():
    pair, entry = one_release()
    live = live_of(pair, entry, pointers={"active": None, "preview": None})
    assert watch_domain.fallback(live, decisions.plan_promote(live, now=NOW, grace=GRACE), now=NOW, grace=GRACE) is None


def test_watch_settings_and_request_flag_are_validated():
    settings = HostSettings.from_data({})
    assert (settings.watch_minutes, settings.watch_max_5xx, settings.watch_failures) == (10.0, 5.0, 3)
    with pytest.raises(CodebError, match="watch_interval_seconds"):
        HostSettings.from_data({"watch_interval_seconds": 0})
    with pytest.raises(CodebError, match="watch_minutes"):
        HostSettings.from_data({"watch_minutes": -1})
    assert SlotRequest.from_data({"project": "shop"}).watch is True
    assert SlotRequest.from_data({"project": "shop", "watch": "false"}).watch is False
    with pytest.raises(CodebError, match="invalid watch"):
        SlotRequest.from_data({"project": "shop", "watch": "maybe"})


def test_stopping_a_watch_that_does_not_run_is_no_error():
    assert str(watch_commands.stop("codeb-watch-shop-production")).endswith("; true")


class App(BaseHTTPRequestHandler):
    """Answers 200 until ``broken`` is set, then 500, and logs each answer as Caddy would."""

    broken = threading.Event()
    log_path = ""

    def do_GET(self):
        status = 500 if self.broken.is_set() else 200
        self.send_response(status)
        self.end_headers()
        with open(self.log_path, "a") as handle:
            handle.write(log_line("shop.codeb.kr", status) + "\n")

    def log_message(self, *args):
        pass


def watch_setup(tmp_path, live, entry, port):
    promote = decisions.plan_promote(live, now=NOW, grace=GRACE)
    rollback = watch_domain.fallback(live, promote, now=NOW, grace=GRACE)
    registry, locks = tmp_path / "registry", tmp_path / "locks"
    registry.mkdir()
    pointers = dict(promote.pointers)
    local = {p: tmp_path / Path(p).name for p in pointers}
    for path, address in pointers.items():
        local[path].write_text(address + "\n")
    table = {"version": 1, "slots": {"shop": {"production": decisions.record_of(promote.wanted)}}}
    (registry / "slots.json").write_text(json.dumps(table))
    limits = watch_domain.WatchLimits(minutes=0.5, interval=0.2, failures=3, max_5xx=5, window=5, min_requests=1000)
    paths = {
        "scheme": "http",
        "port": port,
        "ca": [],
        "health_tool": codeb_health.__file__,
        "state_tool": codeb_state.__file__,
        "registry": str(registry),
        "locks": str(locks),
        "access_log": str(tmp_path / "access.log"),
        "record_path": str(registry / "watch" / "shop.production.json"),
        "audit_python": sys.executable,
        "textfile": str(tmp_path / "codeb-watch-shop-production.prom"),
    }
    spec = watch_domain.spec(live, promote, rollback, limits, paths)
    spec["rollback"]["pointers"] = [[str(local[p]), a] for p, a in spec["rollback"]["pointers"]]
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return spec, local


def test_the_watch_rolls_back_a_release_whose_health_fails_records_why_audits_and_alerts(tmp_path, monkeypatch):
    live, entry = promoted_twice()
    App.log_path, App.broken = str(tmp_path / "access.log"), threading.Event()
    (tmp_path / "access.log").write_text("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec, pointers = watch_setup(tmp_path, live, entry, server.server_address[1])
        monkeypatch.setenv("CODEB_API_AUDIT_DB", str(tmp_path / "audit.db"))
        timer = threading.Timer(1.0, App.broken.set)
        timer.start()
        done = subprocess.run(
            [sys.executable, codeb_watch.__file__, "run", "--spec", str(tmp_path / "spec.json")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    record = json.loads(Path(spec["record_path"]).read_text())
    assert record["state"] == "rolled_back" and record["rollback_to"] == "blue", record
    assert record["reason"] == "health path failed 3 checks in a row (last: HTTP 500)"
    active = Path(pointers[PATHS["active"]]).read_text().strip()
    assert active == f"127.0.0.1:{entry.ports[Slot.BLUE]}", "the domain points at the slot in grace again"
    table = json.loads((tmp_path / "registry" / "slots.json").read_text())["slots"]["shop"]["production"]
    assert table == spec["rollback"]["record"] and table["blue"]["state"] == "active"
    rows = AuditLog(str(tmp_path / "audit.db")).rows()
    assert [(r["tool"], r["source"], r["outcome"], r["params"]["reason"]) for r in rows] == [
        ("rollback", "watch", "allowed", record["reason"])
    ]
    assert AuditLog(str(tmp_path / "audit.db")).verify() is None
    assert (
        'codeb_watch_rolled_back{project="shop",env="production",domain="shop.codeb.kr"} 1'
        in (tmp_path / "codeb-watch-shop-production.prom").read_text()
    )


def test_the_watch_of_a_healthy_release_ends_passed_and_a_changed_record_is_never_rolled_back(tmp_path):
    live, entry = promoted_twice()
    App.log_path, App.broken = str(tmp_path / "access.log"), threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec, pointers = watch_setup(tmp_path, live, entry, server.server_address[1])
        spec["minutes"] = 0.02
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        run = [sys.executable, codeb_watch.__file__, "run", "--spec", str(tmp_path / "spec.json")]
        assert subprocess.run(run, capture_output=True, timeout=60).returncode == 0
        assert json.loads(Path(spec["record_path"]).read_text())["state"] == "passed"
        # a rollback by hand happened meanwhile: the watch's compare-and-swap finds another record
        (tmp_path / "registry" / "slots.json").write_text(
            json.dumps({"version": 1, "slots": {"shop": {"production": spec["rollback"]["record"]}}})
        )
        before = {p: Path(local).read_text() for p, local in pointers.items()}
        App.broken.set()
        spec["minutes"] = 0.5
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        assert subprocess.run(run, capture_output=True, timeout=60).returncode == 0
    finally:
        server.shutdown()
    record = json.loads(Path(spec["record_path"]).read_text())
    assert record["state"] == "ended" and "the slots changed since the promote" in record["reason"]
    assert {p: Path(local).read_text() for p, local in pointers.items()} == before


def test_the_api_promote_and_the_cli_can_skip_the_watch():
    from click.testing import CliRunner

    from codeb_infra.api.tools import TOOLS
    from codeb_infra.cli.slots import promote

    assert TOOLS["promote"].validate({"project": "shop"})[1].watch is True
    assert TOOLS["promote"].validate({"project": "shop", "watch": False})[1].watch is False
    assert "--no-watch" in CliRunner().invoke(promote, ["--help"]).output


def test_the_next_promote_or_a_remove_ends_a_running_watch_with_sigterm(tmp_path):
    live, entry = promoted_twice()
    App.log_path, App.broken = str(tmp_path / "access.log"), threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec, _ = watch_setup(tmp_path, live, entry, server.server_address[1])
        running = subprocess.Popen([sys.executable, codeb_watch.__file__, "run", "--spec", str(tmp_path / "spec.json")])
        record = Path(spec["record_path"])
        for _ in range(100):
            if record.exists() and json.loads(record.read_text())["state"] == "watching":
                break
            time.sleep(0.05)
        running.terminate()
        assert running.wait(timeout=10) == 0
    finally:
        server.shutdown()
    assert json.loads(record.read_text())["state"] == "stopped"


def test_a_promote_with_the_watch_off_plans_and_starts_no_watch():
    from codeb_infra.flows import switch

    live, _ = promoted_twice()
    settings = HostSettings.from_data({})
    watched, unwatched = (SlotRequest.from_data({"project": "shop", "watch": w}) for w in ("true", "false"))

    def watches(request: SlotRequest, settings: HostSettings = settings) -> tuple[bool, bool]:
        decision = switch._promote(live, settings, request)
        planned = any(change.what == "watch" for change in decision.plan.changes)
        return planned, switch._watch(settings, live, decision, request) is not None

    assert watches(watched) == (True, True)
    assert watches(unwatched) == (False, False)
    assert watches(watched, HostSettings.from_data({"watch_minutes": 0})) == (False, False)
