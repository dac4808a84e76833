"""Monitoring settings from host data: how often Prometheus scrapes and evaluates, how often codeb's
own checks are written as metrics, where alerts go, and the exporters' ports."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from codeb_infra.config.roles import HostData
from codeb_infra.domain.errors import host_data_error

KEYS = (
    "monitoring_scrape_seconds",
    "monitoring_evaluation_seconds",
    "monitoring_metrics_seconds",
    "monitoring_retention",
    "alert_webhook",
)

NODE_EXPORTER_PORT = 9100
POSTGRES_EXPORTER_PORT = 9187
REDIS_EXPORTER_PORT = 9121
APP_METRICS_PORT = 9180
# What the monitoring server scrapes on the others' mesh addresses, and no other peer may ask.
EXPORTER_PORTS = (NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT, REDIS_EXPORTER_PORT, APP_METRICS_PORT)
"""Caddy's own metrics, and PowerDNS's through Caddy, on the app server's private address."""
PROMETHEUS_LISTEN = "127.0.0.1:9090"
ALERTMANAGER_LISTEN = "127.0.0.1:9093"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"


def watch_metrics(project: str, env: str) -> str:
    """The file of a project/env's `codeb_watch_*` metrics, for node-exporter's textfile collector."""
    return f"{TEXTFILE_DIR}/codeb-watch-{project}-{env}.prom"


class MonitoringSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    monitoring_scrape_seconds: int = 30
    monitoring_evaluation_seconds: int = 30
    monitoring_metrics_seconds: int = 60
    monitoring_retention: str = "30d"
    alert_webhook: str | None = None
    """Alertmanager sends alerts to this URL (its webhook format); none by default."""

    @field_validator("monitoring_scrape_seconds", "monitoring_evaluation_seconds", "monitoring_metrics_seconds")
    @classmethod
    def _interval(cls, value: int) -> int:
        if not 1 <= value <= 3600:
            raise ValueError("must be 1 to 3600 seconds")
        return value

    @field_validator("monitoring_retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        if not (value[:-1].isdigit() and value[-1:] in ("h", "d", "w", "y")):
            raise ValueError("must be a duration like 30d")
        return value

    @field_validator("alert_webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith(("http://", "https://")) or any(c in value for c in " \n\r\"'")):
            raise ValueError("must be an http(s):// URL without spaces or quotes")
        return value

    @classmethod
    def from_data(cls, data: HostData) -> MonitoringSettings:
        given = {key: data.get(key) for key in KEYS if data.get(key) is not None}
        try:
            return cls(**given)
        except ValidationError as error:
            raise host_data_error(error) from None
