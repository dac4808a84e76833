"""`codeb health`'s verdicts (domain.health) case by case, from hand-made snapshots."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from codeb_infra.domain import data, health
from codeb_infra.domain.health import AppLayout, ServerSnapshot, Snapshot

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
T = NOW.timestamp()
LAYOUT = AppLayout(base_domain="codeb.test", zones=("codeb.test.",), addresses=("10.0.0.2",))
RELEASE = {"image": "localhost/demo:v1", "port": 4000, "container_port": 3000, "health_path": "/health"}


def unit(
    state: str = "active", sub: str = "running", result: str = "success", restarts: int = 0, status: str = "0"
) -> dict[str, str]:
    return {
        "Id": "x",
        "LoadState": "loaded",
        "ActiveState": state,
        "SubState": sub,
        "Result": result,
        "NRestarts": str(restarts),
        "StateChangeTimestamp": f"@{int(T) - 600}",
        "ExecMainStatus": status,
        "ExecMainExitTimestamp": f"@{int(T) - 300}",
    }


def units_of(roles: set[str]) -> tuple[health.Unit, ...]:
    return tuple(health.role_units(roles))


def base_read(roles: set[str]) -> dict[str, Any]:
    return {
        "time": T,
        "units": {u.unit: unit() for u in units_of(roles) if not u.optional},
        "disks": {"/": {"used_percent": 40.0, "inodes_used_percent": 5.0}},
        "memory": {"total_bytes": 4 << 30, "available_bytes": 2 << 30},
    }


def app_read() -> dict[str, Any]:
    read = base_read({"app"})
    read["app"] = {
        "projects": {
            "version": 1,
            "projects": {
                "demo": {
                    "production": {
                        "domain": "demo.codeb.test",
                        "container_port": 3000,
                        "health_path": "/health",
                        "ports": {"blue": 4000, "green": 4001},
                    }
                }
            },
        },
        "slots": {
            "version": 1,
            "slots": {
                "demo": {
                    "production": {
                        "blue": {"state": "active", "release": RELEASE, "deployed_at": "2026-12-01T10:00:00+00:00"},
                        "green": {"state": "empty"},
                    }
                }
            },
        },
        "containers": [
            {
                "name": "demo-production-blue",
                "state": "running",
                "exited_at": 0,
                "labels": {"codeb.project": "demo", "codeb.environment": "production", "codeb.slot": "blue"},
            }
        ],
        "pointers": {
            "demo-production.active": {"address": "127.0.0.1:4000", "answers": True},
            # the preview of an empty slot: nothing listens there, and that is expected
            "demo-production.preview": {"address": "127.0.0.1:4001", "answers": False},
        },
        "sites": ["demo-production"],
        "quadlet": ["demo-production-blue"],
        "locks": {},
    }
    return read


def app_probe() -> dict[str, Any]:
    return {
        "time": T,
        "probes": [
            {
                "domain": "demo.codeb.test",
                "path": "/health",
                "status": 200,
                "certificate": {"valid": True, "not_after": (NOW + timedelta(days=60)).isoformat()},
            }
        ],
        "dns": {"demo.codeb.test": {"addresses": ["10.0.0.2"]}},
    }


def servers() -> dict[str, ServerSnapshot]:
    made = {}
    for role in ("app", "streaming", "storage", "backup"):
        made[role] = ServerSnapshot(
            role,
            frozenset({role}),
            read=app_read() if role == "app" else base_read({role}),
            probe=app_probe() if role == "app" else None,
            asked_at=T,
            units=units_of({role}),
        )
    return made


def evaluate(
    changed: dict[str, ServerSnapshot] | None = None, backups: list[data.Check] | None = None
) -> health.Report:
    return health.evaluate(Snapshot(list((changed or servers()).values()), LAYOUT, NOW, backups or []))


def edit(role: str, *, read: dict | None = None, probe: dict | None = None, **extra: Any) -> dict[str, ServerSnapshot]:
    found = servers()
    old = found[role]
    found[role] = ServerSnapshot(
        old.name,
        old.roles,
        read=read if read is not None else old.read,
        probe=probe if probe is not None else old.probe,
        asked_at=extra.get("asked_at", old.asked_at),
        units=old.units,
        error=extra.get("error"),
    )
    return found


def only(report: health.Report) -> health.Finding:
    assert len(report.findings) == 1, [f.as_dict() for f in report.findings]
    return report.findings[0]


def test_healthy_snapshot_has_no_findings_and_says_what_it_checked():
    report = evaluate()
    assert report.ok, [f.as_dict() for f in report.findings]
    assert "active demo/production via demo.codeb.test" in report.checked
    assert "DNS demo.codeb.test" in report.checked


def test_unreachable_server():
    finding = only(evaluate(edit("storage", read={}, error="Connection refused")))
    assert (finding.server, finding.check) == ("storage", "SSH") and "Connection refused" in finding.problem


def test_reader_missing_says_bootstrap():
    finding = only(evaluate(edit("backup", read={"error": "codeb-health is not installed on this server"})))
    assert finding.fix == "codeb bootstrap -i INVENTORY"


@pytest.mark.parametrize(
    ("props", "wanted"),
    [
        (unit("failed", "failed", "exit-code"), "caddy.service is failed"),
        (unit("inactive", "dead"), "caddy.service is inactive"),
        (unit(restarts=5), "restarts in a loop (5"),
        (unit("activating", "auto-restart", restarts=1), "restarts in a loop"),
    ],
)
def test_unit_down_or_looping(props, wanted):
    read = app_read()
    read["units"]["caddy.service"] = props
    finding = only(evaluate(edit("app", read=read)))
    assert finding.check == "unit caddy.service" and wanted in finding.problem
    assert "journalctl -u caddy.service" in finding.fix
    assert finding.since == NOW - timedelta(seconds=600)


def test_unit_not_installed_and_optional_unit_absent():
    read = app_read()
    del read["units"]["pdns.service"]
    assert "codeb-api.service" not in read["units"]  # optional: not a finding
    finding = only(evaluate(edit("app", read=read)))
    assert finding.problem == "pdns.service is not installed"


def test_backup_job_whose_last_run_failed():
    read = base_read({"storage"})
    read["units"]["codeb-pg-dump.service"] = unit("inactive", "dead", "exit-code", status="1")
    finding = only(evaluate(edit("storage", read=read)))
    assert finding.check == "unit codeb-pg-dump.service" and "exit status 1" in finding.problem
    assert "systemctl start codeb-pg-dump.service" in finding.fix and finding.since == NOW - timedelta(seconds=300)


def test_a_job_that_succeeded_and_sleeps_is_fine():
    read = base_read({"backup"})
    read["units"]["codeb-restore-drill.service"] = unit("inactive", "dead")
    assert evaluate(edit("backup", read=read)).ok


@pytest.mark.parametrize("key", ["used_percent", "inodes_used_percent"])
def test_disk_or_inodes_over_90_percent(key):
    read = base_read({"backup"})
    read["disks"]["/srv/backup"] = {"used_percent": 10.0, "inodes_used_percent": 10.0, key: 93.5}
    finding = only(evaluate(edit("backup", read=read)))
    assert finding.server == "backup" and "93.5%" in finding.problem and "/srv/backup" in finding.check


def test_memory_low():
    read = base_read({"streaming"})
    read["memory"] = {"total_bytes": 4 << 30, "available_bytes": 200 << 20}
    assert only(evaluate(edit("streaming", read=read))).check == "memory"


def test_clock_off_on_one_server():
    read = base_read({"storage"})
    read["time"] = T + 30
    finding = only(evaluate(edit("storage", read=read)))
    assert (finding.server, finding.check) == ("storage", "clock") and "+30.0s" in finding.problem
    read["time"] = T + 2  # within the tolerance of SSH round trips
    assert evaluate(edit("storage", read=read)).ok


def _app(change) -> health.Report:
    read, probe = app_read(), app_probe()
    change(read["app"], probe)
    return evaluate(edit("app", read=read, probe=probe))


def test_active_container_stopped_names_its_unit():
    def change(app, probe):
        app["containers"][0].update(state="exited", exited_at=int(T) - 60)

    finding = only(_app(change))
    assert finding.check == "slot demo-production-blue" and "exited" in finding.problem
    assert finding.fix == "on app: systemctl start demo-production-blue.service" and finding.since == NOW - timedelta(
        seconds=60
    )


def test_registry_slot_whose_container_is_missing():
    def change(app, probe):
        app["containers"].clear()

    finding = only(_app(change))
    assert "container is missing" in finding.problem
    assert finding.fix.startswith("codeb deploy demo --env production --image localhost/demo:v1")


def test_health_through_caddy_failing_offers_rollback_when_a_slot_is_in_grace():
    def change(app, probe):
        app["slots"]["slots"]["demo"]["production"]["green"] = {
            "state": "grace",
            "release": {**RELEASE, "port": 4001},
            "grace_until": (NOW + timedelta(hours=1)).isoformat(),
        }
        app["containers"].append(
            {
                "name": "demo-production-green",
                "state": "running",
                "labels": {"codeb.project": "demo", "codeb.environment": "production", "codeb.slot": "green"},
            }
        )
        app["pointers"]["demo-production.preview"]["answers"] = True
        probe["probes"][0]["status"] = 502
        probe["probes"].append(
            {
                "domain": "demo-preview.codeb.test",
                "path": "/health",
                "status": 200,
                "certificate": {"valid": True, "not_after": (NOW + timedelta(days=60)).isoformat()},
            }
        )

    report = _app(change)
    finding = only(report)
    assert finding.check == "active demo/production" and "HTTP 502" in finding.problem
    assert finding.fix.startswith("codeb rollback demo --env production")
    assert "preview demo/production via demo-preview.codeb.test" in report.checked


def test_preview_failing():
    def change(app, probe):
        app["slots"]["slots"]["demo"]["production"]["green"] = {
            "state": "deployed",
            "release": {**RELEASE, "port": 4001},
        }
        app["containers"].append(
            {
                "name": "demo-production-green",
                "state": "running",
                "labels": {"codeb.project": "demo", "codeb.environment": "production", "codeb.slot": "green"},
            }
        )
        app["pointers"]["demo-production.preview"]["answers"] = True
        probe["probes"].append(
            {"domain": "demo-preview.codeb.test", "path": "/health", "status": None, "error": "timed out"}
        )

    finding = only(_app(change))
    assert finding.check == "preview demo/production" and "timed out" in finding.problem
    assert "podman logs --tail 50 demo-production-green" in finding.fix


@pytest.mark.parametrize(
    ("certificate", "wanted"),
    [
        ({"valid": False, "error": "certificate has expired"}, "certificate not valid: certificate has expired"),
        ({"valid": True, "not_after": (NOW + timedelta(days=10)).isoformat()}, "(10 days left)"),
        (
            {
                "valid": True,
                "not_before": (NOW - timedelta(days=80)).isoformat(),
                "not_after": (NOW + timedelta(days=10)).isoformat(),
            },
            "(10 days left)",
        ),
        (
            {
                "valid": True,
                "not_before": (NOW - timedelta(hours=10)).isoformat(),
                "not_after": (NOW + timedelta(hours=2)).isoformat(),
            },
            "(2.0 hours left)",
        ),
    ],
)
def test_certificate_invalid_or_expiring(certificate, wanted):
    finding = only(_app(lambda app, probe: probe["probes"][0].update(certificate=certificate)))
    assert finding.check == "TLS demo.codeb.test" and wanted in finding.problem


def test_short_lived_certificate_within_its_renewal_margin_is_fine():
    # Caddy's internal CA: 12-hour certificates, renewed when a third of the lifetime is left.
    certificate = {
        "valid": True,
        "not_before": (NOW - timedelta(hours=2)).isoformat(),
        "not_after": (NOW + timedelta(hours=10)).isoformat(),
    }
    assert _app(lambda app, probe: probe["probes"][0].update(certificate=certificate)).ok


def test_dns_answer_other_than_the_app_server():
    finding = only(_app(lambda app, probe: probe["dns"].update({"demo.codeb.test": {"addresses": ["10.9.9.9"]}})))
    assert finding.check == "DNS demo.codeb.test" and "10.9.9.9, not 10.0.0.2" in finding.problem
    assert finding.fix.startswith("codeb deploy demo --env production")


def test_container_with_labels_but_no_registry_entry():
    def change(app, probe):
        app["containers"].append(
            {
                "name": "ghost-production-blue",
                "state": "running",
                "labels": {"codeb.project": "ghost", "codeb.environment": "production", "codeb.slot": "blue"},
            }
        )

    finding = only(_app(change))
    assert (
        finding.check == "container ghost-production-blue"
        and finding.fix == "on app: podman rm -f ghost-production-blue"
    )


def test_pointer_to_a_port_where_nothing_listens():
    finding = only(_app(lambda app, probe: app["pointers"]["demo-production.active"].update(answers=False)))
    assert finding.check == "pointer demo-production.active" and "nothing listens" in finding.problem


def test_pointer_naming_another_address_than_the_registry():
    finding = only(_app(lambda app, probe: app["pointers"]["demo-production.active"].update(address="127.0.0.1:4001")))
    assert "the registry says 127.0.0.1:4000" in finding.problem


def test_sites_without_registry_entry_and_entry_without_site():
    def change(app, probe):
        app["sites"] = ["ghost-staging"]

    report = _app(change)
    checks = {f.check: f for f in report.findings}
    assert set(checks) == {"Caddy site ghost-staging", "Caddy site demo-production"}
    assert (
        checks["Caddy site ghost-staging"].fix
        == "on app: rm /etc/caddy/sites/ghost-staging.caddy && systemctl reload caddy"
    )
    assert "codeb remove demo --env production" in checks["Caddy site demo-production"].fix


def test_two_projects_on_one_port():
    def change(app, probe):
        app["projects"]["projects"]["other"] = {
            "staging": {
                "domain": "other.codeb.test",
                "container_port": 3000,
                "health_path": "/health",
                "ports": {"blue": 4001, "green": 4502},
            }
        }
        app["sites"].append("other-staging")
        probe["dns"]["other.codeb.test"] = {"addresses": ["10.0.0.2"]}

    finding = only(_app(change))
    assert finding.check == "port 4001" and "demo/production and other/staging" in finding.problem
    assert finding.fix.startswith("codeb remove other --env staging")


def test_grace_ended_but_not_cleaned_up():
    def change(app, probe):
        app["slots"]["slots"]["demo"]["production"]["green"] = {
            "state": "grace",
            "release": {**RELEASE, "port": 4001},
            "grace_until": (NOW - timedelta(hours=2)).isoformat(),
        }
        app["containers"].append(
            {
                "name": "demo-production-green",
                "state": "running",
                "labels": {"codeb.project": "demo", "codeb.environment": "production", "codeb.slot": "green"},
            }
        )
        app["pointers"]["demo-production.preview"]["answers"] = True
        probe["probes"].append({"domain": "demo-preview.codeb.test", "path": "/health", "status": 200})

    finding = only(_app(change))
    assert finding.fix == "codeb cleanup demo --env production" and finding.since == NOW - timedelta(hours=2)


def test_lock_older_than_an_hour():
    def change(app, probe):
        app["locks"] = {
            "demo.production": {"holder": "deploy by ci", "since": (NOW - timedelta(hours=3)).isoformat()},
            "other.staging": {"holder": "deploy by me", "since": (NOW - timedelta(minutes=5)).isoformat()},
        }

    finding = only(_app(change))
    assert finding.check == "lock demo/production" and "deploy by ci" in finding.problem
    assert "--break-lock" in finding.fix and "/opt/codeb/locks/demo.production.lock" in finding.fix


def test_broken_registry_is_one_finding():
    finding = only(_app(lambda app, probe: app.update(slots={"error": "slots.json: Expecting value"})))
    assert finding.check == "registry"


def test_backup_checks_become_findings_on_their_server():
    checks = [
        data.Check("WAL archiving", False, "FAILING since x", NOW - timedelta(minutes=3)),
        data.Check("dump demo", False, "none yet"),
        data.Check("base backup", True, "1h ago"),
    ]
    report = evaluate(backups=checks)
    found = {f.check: f for f in report.findings}
    assert set(found) == {"WAL archiving", "dump demo"}
    assert found["WAL archiving"].server == "storage" and found["WAL archiving"].since == NOW - timedelta(minutes=3)
    assert (found["dump demo"].server, found["dump demo"].fix) == ("backup", "codeb backup now dump")
    assert "backup: base backup" in report.checked


def test_probe_targets_follow_the_slots():
    read = app_read()
    state = health.app_state(read)
    targets, resolve = health.probe_targets(state, LAYOUT)
    assert [(t.role, t.domain, t.slot.value) for t in targets] == [("active", "demo.codeb.test", "blue")]
    assert resolve == ["demo.codeb.test"]
    deployed = copy.deepcopy(read)
    deployed["app"]["slots"]["slots"]["demo"]["production"]["green"] = {
        "state": "deployed",
        "release": {**RELEASE, "port": 4001},
    }
    targets, _ = health.probe_targets(health.app_state(deployed), LAYOUT)
    assert ("preview", "demo-preview.codeb.test", "green") in [(t.role, t.domain, t.slot.value) for t in targets]


def test_role_units():
    storage = [u.unit for u in health.role_units({"storage"})]
    assert {"postgresql@15-main.service", "redis-server.service", "codeb-pg-dump.timer"} <= set(storage)
    assert [u for u in health.role_units({"storage"}) if u.unit == "codeb-pg-dump.service"][0].job
