"""The API's report key: codeb-report's whitelist, the authorized_keys line that limits the key,
the parsing of what comes back, and that a report server's answers reach the same decisions as
the CLI's reads of the same commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codeb_infra.config.roles import REPORT_KEY_COMMENT, report_key_line, with_report_key
from codeb_infra.domain.errors import CodebError
from codeb_infra.facts.backups import BackupStoreStatus, StorageBackupStatus
from codeb_infra.facts.health import HealthRead
from codeb_infra.facts.postgres import PostgresDatabases
from codeb_infra.facts.reports import NO_REPORTS, parse
from codeb_infra.flows import backups, health, reports
from codeb_infra.remote import codeb_report
from codeb_infra.roles.reports import report_lines
from codeb_infra.templates import api as api_templates

TOOL = Path(codeb_report.__file__)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5r5ZyBOnm+Lq0B3pP8x3uVYKqjDqZ8j0dJj8G2C6Ws root@app"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STORAGE_DATA = {"private_address": "10.0.0.4", "mesh_network": "10.77.0.0/24", "archive_timeout": 10}


@pytest.mark.parametrize("asked", ["health", "health storage", "storage health storage"])
def test_codeb_report_answers_whitelisted_reports(asked: str) -> None:
    assert codeb_report.asked(asked, {"health": "x", "storage": "y"}) == list(dict.fromkeys(asked.split()))


@pytest.mark.parametrize("asked", [None, "", "id", "health; id", "health id", "../x", "health $(id)", "-rf"])
def test_codeb_report_refuses_anything_else(asked: str | None) -> None:
    with pytest.raises(ValueError):
        codeb_report.asked(asked, {"health": "x", "storage": "y"})


def _run_tool(tmp_path: Path, original: str | None) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "report.json"
    config.write_text(json.dumps({"reports": {"health": "echo '{\"ok\": 1}'", "backup": "echo two; exit 3"}}))
    env = {k: v for k, v in os.environ.items() if k != "SSH_ORIGINAL_COMMAND"}
    if original is not None:
        env["SSH_ORIGINAL_COMMAND"] = original
    return subprocess.run(
        [sys.executable, str(TOOL), str(config)], capture_output=True, text=True, env=env, check=False
    )


def test_codeb_report_runs_the_configured_line_of_each_asked_report(tmp_path: Path) -> None:
    result = _run_tool(tmp_path, "health backup")
    assert result.returncode == 0
    answer = json.loads(result.stdout)
    assert answer["health"] == {"exit": 0, "output": '{"ok": 1}\n'}
    assert answer["backup"]["exit"] == 3 and answer["backup"]["output"] == "two\n"


@pytest.mark.parametrize("original", [None, "id", "health;id", "sh -c id"])
def test_codeb_report_refuses_with_json_and_exit_2(tmp_path: Path, original: str | None) -> None:
    result = _run_tool(tmp_path, original)
    assert result.returncode == codeb_report.EXIT_REFUSED
    assert json.loads(result.stdout)["error"].startswith("refused: ")
    assert "uid=" not in result.stdout


def test_the_report_key_line_limits_source_terminal_and_command() -> None:
    line = report_key_line(KEY, "10.77.0.2")
    assert line.startswith('restrict,from="10.77.0.2",command="python3 /usr/local/lib/codeb/codeb-report ')
    assert line.endswith(f" {REPORT_KEY_COMMENT}") and "root@app" not in line
    with pytest.raises(CodebError):
        report_key_line(KEY, "10.77.0.2,0.0.0.0/0")


def test_the_report_key_line_replaces_its_old_self_and_keeps_the_other_keys() -> None:
    operator = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperator ops@laptop"
    old = report_key_line(KEY, "10.77.0.9")
    new = report_key_line(KEY, "10.77.0.2")
    merged = with_report_key(f"{operator}\n{old}\n", new)
    assert merged == f"{operator}\n{new}\n"
    assert with_report_key(merged, new) == merged
    assert with_report_key(merged, None) == f"{operator}\n"
    assert with_report_key(None, new) == f"{new}\n"


def test_the_answer_over_ssh_parses_into_outputs_or_one_clear_error() -> None:
    answer = json.dumps({"health": {"exit": 0, "output": "a\nb\n"}})
    assert parse(["Warning: Permanently added", answer]) == {"outputs": {"health": ["a", "b"]}}
    refused = parse(['{"error": "refused: not a report: \'id\'"}'])
    assert refused["error"].startswith("codeb-report said: refused")
    denied = parse(["root@10.77.0.4: Permission denied (publickey)."])
    assert denied == {"error": f"{NO_REPORTS}: root@10.77.0.4: Permission denied (publickey)."}
    assert parse([])["error"] == f"{NO_REPORTS}: no answer"


def test_the_whitelist_holds_the_same_command_lines_the_cli_facts_run() -> None:
    lines = report_lines("storage", {"storage"}, STORAGE_DATA)
    assert list(lines) == list(reports.server_reports({"storage"})) == ["health", "storage", "databases"]
    server = health.plan("storage", {"storage"}, STORAGE_DATA)
    fact = HealthRead().command(units=[u.unit for u in server.units], disks=list(server.disks), wireguard="wg0")
    assert lines["health"] == fact.get_raw_value()
    assert "postgresql@15-main.service" in lines["health"] and "--wireguard wg0" in lines["health"]
    assert lines["storage"] == StorageBackupStatus().command().get_raw_value()
    assert lines["databases"] == PostgresDatabases().command().get_raw_value()
    backup = report_lines("backup", {"backup"}, {"backup_root": "/srv/b"})
    assert list(backup) == ["health", "backup"]
    assert backup["backup"] == BackupStoreStatus().command(root="/srv/b").get_raw_value()


def _storage_status(last: str) -> str:
    return json.dumps(
        {
            "archiver": {
                "last_archived_wal": last,
                "last_archived_time": NOW.isoformat(),
                "failed_count": 0,
                "last_failed_time": None,
            },
            "ready": {"count": 0, "oldest_age_seconds": None},
            "redis": {"aof_enabled": True, "aof_last_write_status": "ok", "rdb_last_bgsave_status": "ok"},
        }
    )


def test_a_storage_servers_reports_reach_the_same_checks_as_the_cli_read() -> None:
    status = _storage_status("000000010000000000000009")
    databases = "shop|shop|codeb project shop|f\npostgres|postgres||t"
    remote = reports.RemoteRead(
        "storage",
        frozenset({"storage"}),
        STORAGE_DATA,
        0.0,
        {"storage": status.splitlines(), "databases": databases.splitlines()},
    )
    through_reports = backups.from_reports(remote)["storage"]
    through_facts = backups.storage_found(
        StorageBackupStatus().process(status.splitlines()),
        PostgresDatabases().process(databases.splitlines()),
        STORAGE_DATA,
    )
    assert through_reports == through_facts
    assert through_reports["databases"] == ["shop"] and through_reports["archive_timeout"] == 10
    checks = {c.name: c for c in backups.checks({"storage": through_reports}, NOW)}
    assert checks["WAL archiving"].ok and "000000010000000000000009" in checks["WAL archiving"].detail


def test_a_server_whose_reports_failed_is_an_unreachable_finding_not_a_crash() -> None:
    remote = reports.RemoteRead(
        "storage", frozenset({"storage"}), STORAGE_DATA, None, error="no reports over SSH: Permission denied"
    )
    found = health._remote_found(remote)
    assert found["error"] == "no reports over SSH: Permission denied" and "storage" not in found
    snapshot = health.health.ServerSnapshot("storage", found["roles"], error=found["error"], units=found["units"])
    layout = health.health.AppLayout(base_domain="codeb.test", zones=("codeb.test",), addresses=("10.0.0.2",))
    report = health.health.evaluate(
        health.health.Snapshot([snapshot], layout, NOW, backups.checks({}, NOW + timedelta(seconds=1)))
    )
    storage = [f for f in report.findings if f.server == "storage"]
    assert storage and any("Permission denied" in f.problem for f in storage)


def test_the_api_inventory_names_the_report_servers() -> None:
    entry = reports.server_entry("storage", ["storage"], "10.77.0.4", {**STORAGE_DATA, "ssh_key": "/k"})
    assert entry == {
        "name": "storage",
        "roles": ["storage"],
        "address": "10.77.0.4",
        "data": {"archive_timeout": 10, "mesh_network": "10.77.0.0/24", "private_address": "10.0.0.4"},
    }
    scope: dict = {}
    exec(api_templates.render_inventory({"base_domain": "codeb.test"}, [entry]), scope)
    assert scope["app"][0][1]["codeb_report_servers"] == [entry]
