"""Monitoring's rendered files and command lines: Prometheus's targets, the alert rules,
Alertmanager's receiver, the settings' validation, and the Redis exporter's env file."""

from __future__ import annotations

import json
import subprocess

import pytest

from codeb_infra.commands import monitoring as monitoring_commands
from codeb_infra.config.monitoring import MonitoringSettings
from codeb_infra.domain.errors import CodebError
from codeb_infra.templates import monitoring as templates

SERVERS = [
    templates.Server("app", "app", "10.0.0.2"),
    templates.Server("ws", "streaming", "10.0.0.3"),
    templates.Server("db", "storage", "10.0.0.4"),
    templates.Server("backup", "backup", "10.0.0.5"),
]


def document(text: str) -> dict:
    assert text.startswith("# Written by codeb-infra")
    return json.loads(text.split("\n", 1)[1])


def test_prometheus_scrapes_every_exporter_on_private_addresses():
    config = document(templates.prometheus_config(SERVERS, MonitoringSettings(monitoring_scrape_seconds=5)))
    assert config["global"]["scrape_interval"] == "5s"
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]] for job in config["scrape_configs"]
    }
    assert targets["node"] == ["10.0.0.2:9100", "10.0.0.3:9100", "10.0.0.4:9100", "10.0.0.5:9100"]
    assert targets["postgres"] == ["10.0.0.4:9187"] and targets["redis"] == ["10.0.0.4:9121"]
    assert targets["caddy"] == targets["powerdns"] == ["10.0.0.2:9180"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]


def test_a_missing_role_has_no_job():
    config = document(templates.prometheus_config(SERVERS[:1], MonitoringSettings()))
    assert "postgres" not in {job["job_name"] for job in config["scrape_configs"]}


def test_alert_rules_cover_what_must_alert():
    rules = {
        r["alert"]: r
        for r in document(templates.alert_rules(MonitoringSettings(monitoring_metrics_seconds=10)))["groups"][0][
            "rules"
        ]
    }
    assert {
        "SlotDown",
        "TargetDown",
        "WalArchivingFailing",
        "BackupTooOld",
        "DrillTooOldOrFailed",
        "CertificateExpiring",
        "DiskFull",
        "CodebChecksStale",
    } <= set(rules)
    assert rules["SlotDown"]["for"] == "20s" and "codeb_slot_up == 0" in rules["SlotDown"]["expr"]
    assert (
        'kind="base"} > 93600' in rules["BackupTooOld"]["expr"]
        and 'kind="rdb"} > 4200' in rules["BackupTooOld"]["expr"]
    )
    assert ", 1209600)" in rules["CertificateExpiring"]["expr"] and "> 90" in rules["DiskFull"]["expr"]


def test_alertmanager_receiver_is_the_webhook_or_none():
    assert document(templates.alertmanager_config(MonitoringSettings()))["receivers"] == [{"name": "none"}]
    config = document(templates.alertmanager_config(MonitoringSettings(alert_webhook="https://hooks.example.com/x")))
    assert config["route"]["receiver"] == "webhook"
    assert config["receivers"][0]["webhook_configs"] == [{"url": "https://hooks.example.com/x", "send_resolved": True}]


@pytest.mark.parametrize(
    "data",
    [
        {"alert_webhook": "ftp://x"},
        {"alert_webhook": "https://a b"},
        {"monitoring_scrape_seconds": 0},
        {"monitoring_retention": "forever"},
    ],
)
def test_bad_settings_are_refused(data):
    with pytest.raises(CodebError, match="invalid host data"):
        MonitoringSettings.from_data(data)


def test_metrics_site_only_lets_the_backup_server_in():
    site = templates.app_metrics_site(address="10.0.0.2", backup_address="10.0.0.5", pdns_api_port=8081)
    assert (
        "bind 10.0.0.2" in site
        and "@others not remote_ip 10.0.0.5" in site
        and "respond @others 403" in site
        and "reverse_proxy @pdns 127.0.0.1:8081" in site
    )


def test_redis_exporter_env_file_is_made_and_compared_on_the_server(tmp_path):
    password, env = tmp_path / "redis.password", tmp_path / "exporter"
    password.write_text("s3cret-value")
    args = "-web.listen-address 10.0.0.4:9121 -redis.addr redis://127.0.0.1:6379"

    def sh(line) -> str:
        return subprocess.run(str(line), shell=True, capture_output=True, text=True, check=True).stdout.strip()

    assert "s3cret" not in str(monitoring_commands.redis_env(str(env), args, str(password)))
    assert sh(monitoring_commands.redis_env_current(str(env), args, str(password))) == "differs"
    sh(monitoring_commands.redis_env(str(env), args, str(password)))
    assert env.read_text() == f"ARGS='{args}'\nREDIS_PASSWORD=s3cret-value\n"
    assert env.stat().st_mode & 0o777 == 0o600
    assert sh(monitoring_commands.redis_env_current(str(env), args, str(password))) == "same"
    password.write_text("other")
    assert sh(monitoring_commands.redis_env_current(str(env), args, str(password))) == "differs"


def test_metrics_job_line():
    line = monitoring_commands.metrics_job(
        "/var/lib/prometheus/node-exporter/codeb.prom", registry="/opt/codeb/registry"
    )
    assert line == (
        "/usr/bin/python3 /usr/local/lib/codeb/codeb-health metrics --out "
        "/var/lib/prometheus/node-exporter/codeb.prom --registry /opt/codeb/registry"
    )
