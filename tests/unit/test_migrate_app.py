"""The app migration's pure decisions: steps and resume point, the step record, the records that
change, TTL verdicts, disk, the relay, and the source's request count."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from codeb_infra.commands import migrate_app as commands
from codeb_infra.domain import migrate_app as plan
from codeb_infra.domain.dns import OWNER_ACCOUNT, Comment, RRset, Zone, owner_comment
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.migrate_app import MigrationRecord, Step
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.registry import ProjectEnv, Projects, SlotPairRecord, SlotTable
from codeb_infra.domain.slots import Release, SlotRecord, SlotState

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD, NEW = "10.0.0.1", "10.0.0.9"


def _record(**changes: object) -> MigrationRecord:
    base = MigrationRecord(source="app", target="app-target", source_address=OLD, target_address=NEW, started=NOW)
    return base.model_copy(update=changes)


def _zone(*rrsets: RRset) -> Zone:
    return Zone(name="codeb.test.", kind="Native", serial=1, rrsets=rrsets)


def _a(name: str, *contents: str, ttl: int = 3600, comments: tuple[Comment, ...] = ()) -> RRset:
    return RRset(name=name, rtype="A", ttl=ttl, contents=contents, comments=comments)


# --- steps --------------------------------------------------------------------------------------


def test_a_new_record_runs_every_step_in_order() -> None:
    assert plan.remaining_steps(_record()) == tuple(Step)
    assert [s.value for s in Step] == ["bootstrap", "state", "images", "slots", "health", "relay", "dns"]


@pytest.mark.parametrize("done", range(len(Step) + 1))
def test_a_rerun_resumes_after_the_last_finished_step(done: int) -> None:
    record = _record(done=tuple(Step)[:done])
    assert plan.remaining_steps(record) == tuple(Step)[done:]


def test_recording_a_step_twice_keeps_it_once() -> None:
    record = _record().with_step(Step.STATE).with_step(Step.STATE)
    assert record.done == (Step.STATE,)


def test_the_record_round_trips_as_json() -> None:
    record = _record(done=(Step.BOOTSTRAP, Step.DNS), dns_switched_at=NOW, grace_until=NOW + timedelta(hours=48))
    assert MigrationRecord.model_validate_json(record.model_dump_json()) == record


def test_start_record_continues_the_targets_own_record() -> None:
    existing = _record(done=(Step.BOOTSTRAP, Step.STATE))
    found = plan.start_record(
        existing, source="app", target="app-target", source_address=OLD, target_address=NEW, now=NOW
    )
    assert found is existing


def test_start_record_refuses_a_move_from_another_source() -> None:
    existing = _record(source="old-app")
    with pytest.raises(CodebError, match="holds a migration from old-app"):
        plan.start_record(existing, source="app", target="app-target", source_address=OLD, target_address=NEW, now=NOW)


def test_after_an_abort_a_migration_starts_over() -> None:
    existing = _record(done=tuple(Step), aborted_at=NOW)
    later = NOW + timedelta(hours=1)
    found = plan.start_record(
        existing, source="app", target="app-target", source_address=OLD, target_address=NEW, now=later
    )
    assert found.done == () and found.started == later


def test_abort_needs_a_move_in_grace() -> None:
    with pytest.raises(CodebError, match="nothing to abort"):
        plan.abort_allowed(None, NOW)
    with pytest.raises(CodebError, match="already aborted"):
        plan.abort_allowed(_record(aborted_at=NOW), NOW)
    ended = _record(grace_until=NOW - timedelta(seconds=1))
    with pytest.raises(CodebError, match="grace period ended"):
        plan.abort_allowed(ended, NOW)
    ok = _record(grace_until=NOW + timedelta(hours=1))
    assert plan.abort_allowed(ok, NOW) is ok


# --- DNS ------------------------------------------------------------------------------------------


def test_every_a_record_naming_the_source_changes_and_nothing_else() -> None:
    owned = (owner_comment("demo/production"),)
    zone = _zone(
        _a("demo.codeb.test.", OLD, comments=owned),
        _a("app.codeb.test.", OLD),
        _a("db.codeb.test.", "10.0.0.3"),
        _a("pair.codeb.test.", OLD, "10.0.0.4", ttl=60),
        RRset(name="codeb.test.", rtype="TXT", ttl=60, contents=(f'"{OLD}"',)),
    )
    changed = {r.name: r for r in plan.address_changes(zone, OLD, NEW)}
    assert set(changed) == {"demo.codeb.test.", "app.codeb.test.", "pair.codeb.test."}
    assert changed["demo.codeb.test."].contents == (NEW,)
    assert changed["demo.codeb.test."].comments == owned  # the owner mark stays
    assert changed["pair.codeb.test."].contents == ("10.0.0.4", NEW)
    assert changed["pair.codeb.test."].ttl == 60
    assert plan.address_changes(None, OLD, NEW) == ()
    # Switching back finds the same names
    back = _zone(*(r for r in changed.values()))
    assert {r.name for r in plan.address_changes(back, NEW, OLD)} == set(changed)


def test_lowering_a_ttl_notes_the_old_one() -> None:
    lowered = plan.lowered_ttl(_a("demo.codeb.test.", OLD, comments=(owner_comment("demo/production"),)))
    assert lowered.ttl == plan.LOW_TTL
    assert lowered.owner == "demo/production"
    assert Comment(content="ttl-lowered-from=3600", account=OWNER_ACCOUNT) in lowered.comments
    assert plan.lowered_ttl(_a("x.codeb.test.", OLD, ttl=30)).ttl == 30


def _lowered(ago: int, old: int = 3600) -> RRset:
    note = Comment(content=f"ttl-lowered-from={old}", account=OWNER_ACCOUNT, modified_at=int(NOW.timestamp()) - ago)
    return _a("demo.codeb.test.", OLD, ttl=60, comments=(note,))


def test_stale_answers_last_the_old_ttl_until_it_ran_out() -> None:
    assert plan.stale_for(_a("a.codeb.test.", OLD, ttl=600), NOW) == 600
    assert plan.stale_for(_lowered(ago=600), NOW) == 3000
    assert plan.stale_for(_lowered(ago=3600), NOW) == 60


def test_ttl_checks_print_the_ttl_when_it_was_lowered_and_the_command() -> None:
    lower = {"demo.codeb.test.": "LOWER-CMD"}
    (fresh,) = plan.ttl_checks([_lowered(ago=100)], grace=timedelta(hours=48), now=NOW, lower=lower)
    assert fresh.ok and "lowered from 3600 s 100 s ago (less than one old TTL)" in fresh.detail
    (waited,) = plan.ttl_checks([_lowered(ago=4000)], grace=timedelta(hours=48), now=NOW, lower=lower)
    assert waited.ok and "at least one old TTL" in waited.detail and "LOWER-CMD" not in waited.detail
    (high,) = plan.ttl_checks([_a("demo.codeb.test.", OLD)], grace=timedelta(hours=48), now=NOW, lower=lower)
    assert high.ok and "TTL 3600 s" in high.detail and "LOWER-CMD" in high.detail


def test_a_ttl_longer_than_the_grace_period_fails() -> None:
    (check,) = plan.ttl_checks(
        [_a("demo.codeb.test.", OLD, ttl=86400)], grace=timedelta(hours=1), now=NOW, lower={"demo.codeb.test.": "CMD"}
    )
    assert not check.ok and "too long" in check.detail and "CMD" in check.detail


def test_outside_changes_name_ns_and_glue_inside_the_zone() -> None:
    lines = plan.outside_changes(["codeb.test."], ["ns1.codeb.test.", "ns.other.net."], NEW)
    assert lines[0] == "at the registrar of codeb.test: NS ns1.codeb.test, ns.other.net"
    assert lines[1:] == [f"  glue record ns1.codeb.test A {NEW} (it is inside its own zone)"]


# --- preflight -------------------------------------------------------------------------------------


def test_reach_and_disk_checks() -> None:
    assert plan.reach_check("t", None).ok
    bad = plan.reach_check("t", "Connection refused")
    assert not bad.ok and "cannot reach t: Connection refused" in bad.detail
    mib = 1024 * 1024
    assert plan.disk_check("t", image_bytes=100 * mib, free_bytes=1024 * mib).ok
    small = plan.disk_check("t", image_bytes=600 * mib, free_bytes=1024 * mib)
    assert not small.ok and small.detail.startswith("too little disk")
    assert not plan.disk_check("t", image_bytes=0, free_bytes=None).ok


def test_unhealthy_names_each_domain_not_answering_2xx() -> None:
    probe = {
        "probes": [
            {"domain": "a.codeb.test", "path": "/health", "status": 200},
            {"domain": "b.codeb.test", "path": "/health", "status": 502},
            {"domain": "c.codeb.test", "path": "/health", "status": None, "error": "refused"},
        ]
    }
    assert plan.unhealthy(probe) == [
        "https://b.codeb.test/health answered 502",
        "https://c.codeb.test/health answered refused",
    ]
    assert plan.unhealthy({"error": "no output"}) == ["the probe failed: no output"]


# --- what moves -----------------------------------------------------------------------------------


def _projects() -> Projects:
    entry = ProjectEnv(
        domain="demo.codeb.test", container_port=3000, health_path="/health", ports={Slot.BLUE: 4321, Slot.GREEN: 4322}
    )
    other = entry.model_copy(update={"domain": "shop.codeb.test", "aliases": ("www.shop.test",)})
    return Projects(projects={"demo": {Environment.PRODUCTION: entry}, "shop": {Environment.STAGING: other}})


def test_relay_one_port_per_pointer_following_the_targets_pointer() -> None:
    routes = plan.relay_routes(_projects(), "/etc/caddy/upstreams", "codeb.test")
    assert [(r.pointer, r.port, r.domain) for r in routes] == [
        ("/etc/caddy/upstreams/demo-production.active", 7400, "demo.codeb.test"),
        ("/etc/caddy/upstreams/demo-production.preview", 7401, "demo-preview.codeb.test"),
        ("/etc/caddy/upstreams/shop-staging.active", 7402, "shop.codeb.test,www.shop.test"),
        ("/etc/caddy/upstreams/shop-staging.preview", 7403, "shop-staging-preview.codeb.test"),
    ]
    site = plan.relay_site(routes, "10.77.0.6")
    assert site.count("bind 10.77.0.6") == 4
    assert (
        "http://:7400 {\n\tbind 10.77.0.6\n\tvars upstream {file./etc/caddy/upstreams/demo-production.active}" in site
    )
    assert plan.relay_pointers(routes, "10.77.0.6")["/etc/caddy/upstreams/shop-staging.preview"] == "10.77.0.6:7403"


def test_pointer_paths_cover_active_and_preview() -> None:
    assert plan.pointer_paths(_projects(), "/u") == [
        "/u/demo-production.active",
        "/u/demo-production.preview",
        "/u/shop-staging.active",
        "/u/shop-staging.preview",
    ]


def test_slots_that_run_move_failed_and_empty_ones_do_not() -> None:
    def rec(state: SlotState, image: str) -> SlotRecord:
        return SlotRecord(
            state=state, release=Release(image=image, port=4321, container_port=3000, health_path="/health")
        )

    table = SlotTable(
        slots={
            "demo": {
                Environment.PRODUCTION: SlotPairRecord(
                    blue=rec(SlotState.ACTIVE, "img:v2"), green=rec(SlotState.GRACE, "img:v1")
                )
            },
            "shop": {
                Environment.STAGING: SlotPairRecord(
                    blue=rec(SlotState.FAILED, "img:bad"), green=rec(SlotState.DEPLOYED, "img:v1")
                )
            },
        }
    )
    assert plan.running_containers(table) == ["demo-production-blue", "demo-production-green", "shop-staging-green"]
    assert plan.slot_images(table) == ["img:v1", "img:v2"]


def test_requests_since_counts_log_lines_after_the_switch() -> None:
    t = NOW.timestamp()
    lines = [json.dumps({"ts": t - 5}), json.dumps({"ts": t + 1}), "not json", json.dumps({"ts": t + 7}), "{}"]
    assert plan.requests_since(lines, NOW) == (2, t + 7)
    assert plan.requests_since([], NOW) == (0, None)


# --- commands --------------------------------------------------------------------------------------


def test_archives_are_private_and_removed() -> None:
    packed = commands.pack(
        "/var/tmp/s.tgz", ["/opt/codeb/env", "/etc/caddy/sites/demo-production.caddy"]
    ).get_raw_value()
    assert (
        packed.startswith("umask 077 && cd / && tar")
        and "opt/codeb/env etc/caddy/sites/demo-production.caddy" in packed
    )
    assert "rm -f -- /var/tmp/s.tgz" in commands.unpack("/var/tmp/s.tgz").get_raw_value()
    assert commands.save_image("localhost/x:v1", "/var/tmp/i.tar").get_raw_value().startswith("umask 077 &&")
    with pytest.raises(ValueError):
        commands.pack("/var/tmp/s.tgz", ["-rf"])


def test_step_record_write_is_atomic() -> None:
    raw = commands.write_json("/opt/codeb/migration/app.json", '{"a":1}').get_raw_value()
    assert "umask 077" in raw and raw.endswith(
        "mv -f -- /opt/codeb/migration/app.json.tmp /opt/codeb/migration/app.json"
    )


def test_health_targets_are_each_domain_and_its_preview_when_both_slots_run() -> None:
    release = Release(image="img:v1", port=4321, container_port=3000, health_path="/health")
    both = SlotPairRecord(
        blue=SlotRecord(state=SlotState.ACTIVE, release=release),
        green=SlotRecord(state=SlotState.GRACE, release=release),
    )
    one = SlotPairRecord(blue=SlotRecord(state=SlotState.ACTIVE, release=release))
    table = SlotTable(slots={"demo": {Environment.PRODUCTION: both}, "shop": {Environment.STAGING: one}})
    assert plan.health_targets(_projects(), table, "codeb.test") == [
        ("demo.codeb.test", "/health"),
        ("demo-preview.codeb.test", "/health"),
        ("shop.codeb.test", "/health"),
    ]
