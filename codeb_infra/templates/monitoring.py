"""Prometheus's scrape configuration, codeb's alert rules and Alertmanager's configuration, rendered
from the inventory's servers and the monitoring settings. YAML files written in YAML's JSON form
(a comment, then JSON), so that Prometheus's `{{ $labels }}` templates need no escaping. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codeb_infra.config.monitoring import (
    ALERTMANAGER_LISTEN,
    APP_METRICS_PORT,
    NODE_EXPORTER_PORT,
    POSTGRES_EXPORTER_PORT,
    PROMETHEUS_LISTEN,
    REDIS_EXPORTER_PORT,
    MonitoringSettings,
)
from codeb_infra.domain.data import BACKUP_SCHEDULES, STORAGE_SCHEDULES
from codeb_infra.templates import render

HEADER = "# Written by codeb-infra (monitoring on the backup server); changes are undone by the next bootstrap.\n"
CERTIFICATE_DAYS = 14
DISK_PERCENT = 90


@dataclass(frozen=True)
class Server:
    name: str
    role: str
    address: str


def _document(value: Mapping[str, Any]) -> str:
    return HEADER + json.dumps(value, indent=2) + "\n"


def _job(name: str, servers: Sequence[Server], port: int, path: str = "/metrics") -> dict[str, Any]:
    return {
        "job_name": name,
        "metrics_path": path,
        "static_configs": [
            {"targets": [f"{s.address}:{port}"], "labels": {"server": s.name, "role": s.role}} for s in servers
        ],
    }


def prometheus_config(servers: Sequence[Server], settings: MonitoringSettings) -> str:
    by_role = {role: [s for s in servers if s.role == role] for role in ("app", "streaming", "storage", "backup")}
    jobs = [
        _job("node", servers, NODE_EXPORTER_PORT),
        _job("postgres", by_role["storage"], POSTGRES_EXPORTER_PORT),
        _job("redis", by_role["storage"], REDIS_EXPORTER_PORT),
        _job("caddy", by_role["app"], APP_METRICS_PORT),
        _job("powerdns", by_role["app"], APP_METRICS_PORT, "/pdns/metrics"),
        {"job_name": "prometheus", "static_configs": [{"targets": [PROMETHEUS_LISTEN]}]},
        {"job_name": "alertmanager", "static_configs": [{"targets": [ALERTMANAGER_LISTEN]}]},
    ]
    return _document(
        {
            "global": {
                "scrape_interval": f"{settings.monitoring_scrape_seconds}s",
                "evaluation_interval": f"{settings.monitoring_evaluation_seconds}s",
            },
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [ALERTMANAGER_LISTEN]}]}]},
            "rule_files": ["/etc/prometheus/codeb-rules.yml"],
            "scrape_configs": [job for job in jobs if job.get("static_configs")],
        }
    )


def _rule(alert: str, expr: str, summary: str, fix: str, wait: str, severity: str = "critical") -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "fix": fix},
    }


def alert_rules(settings: MonitoringSettings) -> str:
    """The alerts: a slot down, a release rolled back by its watch, a server or exporter down, WAL
    archiving failing, a backup or drill older than its schedule allows, a certificate expiring soon,
    a disk almost full."""
    # Two rounds of codeb's own checks before a slot counts as down: one failed probe is not an outage.
    slot_wait = f"{2 * settings.monitoring_metrics_seconds}s"
    target_wait = f"{3 * settings.monitoring_scrape_seconds}s"
    stale = 5 * settings.monitoring_metrics_seconds + settings.monitoring_scrape_seconds
    ages = {s.kind: int(s.max_age.total_seconds()) for s in (*STORAGE_SCHEDULES, *BACKUP_SCHEDULES)}
    rules = [
        _rule(
            "SlotDown",
            "codeb_slot_up == 0 or codeb_slot_container_running == 0",
            "{{ $labels.project }}/{{ $labels.env }}: the active slot ({{ $labels.slot }}) does not answer "
            "{{ $labels.domain }}'s health path through Caddy",
            "codeb health; codeb rollback {{ $labels.project }} --env {{ $labels.env }} if the slot in grace is good",
            slot_wait,
        ),
        _rule(
            "ReleaseRolledBack",
            "codeb_watch_rolled_back == 1",
            "{{ $labels.project }}/{{ $labels.env }}: the release promoted last failed its watch on "
            "{{ $labels.domain }} and was rolled back by the app server",
            "codeb status {{ $labels.project }} --env {{ $labels.env }} (why); fix the release, deploy, promote",
            "0s",
        ),
        _rule(
            "TargetDown",
            "up == 0",
            "{{ $labels.job }} on {{ $labels.instance }} cannot be scraped (server or exporter down)",
            "codeb health (SSH and units of {{ $labels.server }})",
            target_wait,
        ),
        _rule(
            "CodebChecksStale",
            f"time() - codeb_metrics_updated_timestamp_seconds > {stale}",
            "codeb's own checks on {{ $labels.server }} stopped updating",
            "systemctl status codeb-metrics.timer",
            "0s",
        ),
        _rule(
            "WalArchivingFailing",
            "codeb_wal_archive_failing == 1 or codeb_storage_status_up == 0",
            "WAL archiving to the backup server is failing",
            "codeb backup status; check the backup server's sshd",
            f"{settings.monitoring_evaluation_seconds}s",
        ),
        _rule(
            "BackupTooOld",
            " or ".join(
                f'time() - codeb_backup_last_timestamp_seconds{{kind="{metric}"}} > {ages[kind]}'
                for metric, kind in (("base", "base"), ("dump", "dump"), ("rdb", "redis"))
            ),
            "the newest {{ $labels.kind }} backup {{ $labels.database }} is older than its schedule allows",
            "codeb backup status; codeb backup now",
            "0s",
            "warning",
        ),
        _rule(
            "DrillTooOldOrFailed",
            f'time() - codeb_backup_last_timestamp_seconds{{kind="drill"}} > {ages["drill"]} or codeb_drill_ok == 0',
            "the last restore drill failed or is older than its schedule allows",
            "codeb backup verify",
            "0s",
            "warning",
        ),
        _rule(
            "CertificateExpiring",
            # 14 days, or a third of the lifetime of short-lived certificates (Caddy's internal CA: 12 hours).
            "(codeb_certificate_expiry_timestamp_seconds - time()) < clamp_max("
            "(codeb_certificate_expiry_timestamp_seconds - codeb_certificate_issued_timestamp_seconds) / 3,"
            f" {CERTIFICATE_DAYS * 86400}) or codeb_certificate_valid == 0",
            "the certificate of {{ $labels.domain }} is not valid or expires within 14 days",
            "journalctl -u caddy on app (ACME renewal)",
            "0s",
            "warning",
        ),
        _rule(
            "DiskFull",
            '100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|squashfs"} / node_filesystem_size_bytes) '
            f"> {DISK_PERCENT}",
            "{{ $labels.mountpoint }} on {{ $labels.server }} is over 90% full",
            "codeb health (disk findings say what to free)",
            f"{target_wait}",
        ),
    ]
    return _document({"groups": [{"name": "codeb", "rules": rules}]})


def alertmanager_config(settings: MonitoringSettings) -> str:
    receiver = (
        {"name": "webhook", "webhook_configs": [{"url": settings.alert_webhook, "send_resolved": True}]}
        if settings.alert_webhook
        else {"name": "none"}
    )
    return _document(
        {
            "route": {
                "receiver": receiver["name"],
                "group_by": ["alertname", "server", "project", "env"],
                "group_wait": "10s",
                "group_interval": "1m",
                "repeat_interval": "4h",
            },
            "receivers": [receiver],
        }
    )


def app_metrics_site(*, address: str, backup_address: str, pdns_api_port: int) -> str:
    return render(
        "metrics.caddy.j2",
        address=address,
        port=APP_METRICS_PORT,
        backup_address=backup_address,
        pdns_api_port=pdns_api_port,
    )
