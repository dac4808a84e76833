"""Health and monitoring on every server: the codeb-health reader (what `codeb health` reads),
node-exporter with codeb's own checks as textfile metrics, the storage exporters, Caddy's and
PowerDNS's metrics on the app server, and Prometheus with Alertmanager on the backup server.
Exporters listen on the internal address only (the mesh address when the mesh is on, else the
private one); Prometheus and Alertmanager on loopback (reach
them over an SSH tunnel)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from codeb_infra.commands.health import HEALTH_TOOL
from codeb_infra.commands.monitoring import MetricsJob, metrics_job
from codeb_infra.config.app import DnsSettings, HostSettings
from codeb_infra.config.monitoring import (
    ALERTMANAGER_LISTEN,
    NODE_EXPORTER_PORT,
    POSTGRES_EXPORTER_PORT,
    PROMETHEUS_LISTEN,
    REDIS_EXPORTER_PORT,
    TEXTFILE_DIR,
    MonitoringSettings,
)
from codeb_infra.config.roles import REDIS_PASSWORD, BackupSettings
from codeb_infra.domain.data import BACKUP_TOOL, STORAGE_TOOL
from codeb_infra.operations import caddy
from codeb_infra.operations import monitoring as monitoring_ops
from codeb_infra.roles.network import internal_address
from codeb_infra.templates import monitoring as templates
from codeb_infra.templates import render

HEALTH_SOURCE = Path(__file__).resolve().parent.parent / "remote" / "codeb_health.py"
CADDY_LOCAL_ROOT = "/var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt"
METRICS_SITE = "_metrics.caddy"
ROLES = ("app", "streaming", "storage", "backup")


def _servers() -> list[templates.Server]:
    inventory = host.state.inventory
    return [
        templates.Server(h.name, role, address)
        for role in ROLES
        for h in inventory.get_group(role, default=[])
        if (address := internal_address(h))
    ]


def _service(package: str, unit: str, defaults: str, *, restart_on: bool = False, mode: str = "644") -> None:
    """A Debian exporter package whose /etc/default file is written first, so it never starts
    listening anywhere else; ``mode`` is the one the package's own install gives that file, so a
    second run finds it as the first left it."""
    written = files.put(name=f"{unit} settings", src=StringIO(defaults), dest=f"/etc/default/{package}", mode=mode)
    apt.packages(name=package, packages=[package], no_recommends=True)
    systemd.service(
        name=f"{unit} running", service=unit, running=True, enabled=True, restarted=written.will_change or restart_on
    )


@deploy("Monitoring")
def monitoring() -> None:
    roles = {role for role in ROLES if role in host.groups}
    settings = MonitoringSettings.from_data(host.data)
    address = internal_address(host)
    files.put(
        name="codeb-health (what `codeb health` reads)",
        src=str(HEALTH_SOURCE),
        dest=HEALTH_TOOL,
        user="root",
        group="root",
        mode="755",
        create_remote_dir=True,
    )
    if not address:
        return
    files.directory(name=f"Directory {TEXTFILE_DIR}", path=TEXTFILE_DIR, mode="755")
    _service(
        "prometheus-node-exporter",
        "prometheus-node-exporter.service",
        f'ARGS="--web.listen-address={address}:{NODE_EXPORTER_PORT} --collector.textfile.directory={TEXTFILE_DIR}"\n',
    )
    _metrics_timer(roles, settings)
    if "storage" in roles:
        storage_exporters(address)
    if "app" in roles:
        app_metrics(address)
    if "backup" in roles:
        prometheus(settings)


def _metrics_timer(roles: set[str], settings: MonitoringSettings) -> None:
    job: MetricsJob = {}
    if "app" in roles:
        app = HostSettings.from_data(host.data)
        job.update(
            {"registry": app.registry_dir, "ca": (CADDY_LOCAL_ROOT, *([app.acme_ca_root] if app.acme_ca_root else []))}
        )
    if "storage" in roles:
        job["storage_tool"] = STORAGE_TOOL
    if "backup" in roles:
        job.update({"backup_tool": BACKUP_TOOL, "backup_root": BackupSettings.from_data(host.data).backup_root})
    unit = files.put(
        name="codeb-metrics service",
        dest="/etc/systemd/system/codeb-metrics.service",
        mode="644",
        src=StringIO(render("codeb-metrics.service.j2", command=metrics_job(f"{TEXTFILE_DIR}/codeb.prom", **job))),
    )
    timer = files.put(
        name="codeb-metrics timer",
        dest="/etc/systemd/system/codeb-metrics.timer",
        mode="644",
        src=StringIO(render("codeb-metrics.timer.j2", seconds=settings.monitoring_metrics_seconds)),
    )
    systemd.service(
        name="codeb-metrics timer running",
        service="codeb-metrics.timer",
        running=True,
        enabled=True,
        daemon_reload=unit.will_change or timer.will_change,
        restarted=unit.will_change or timer.will_change,
    )


def storage_exporters(address: str) -> None:
    """PostgreSQL's exporter through the socket as `prometheus` (pg_monitor), Redis's with the password."""
    monitoring_ops.postgres_monitor_role(name="PostgreSQL role prometheus (pg_monitor)")
    _service(
        "prometheus-postgres-exporter",
        "prometheus-postgres-exporter.service",
        'DATA_SOURCE_NAME="user=prometheus host=/run/postgresql dbname=postgres sslmode=disable"\n'
        f'ARGS="--web.listen-address={address}:{POSTGRES_EXPORTER_PORT}"\n',
        mode="640",  # its postinst makes it prometheus's own, 0640 (the file may hold a DSN password)
    )
    env = monitoring_ops.redis_exporter_env(
        name="Redis exporter settings (password from the root-only file)",
        path="/etc/default/prometheus-redis-exporter",
        args=f"-web.listen-address {address}:{REDIS_EXPORTER_PORT} -redis.addr redis://127.0.0.1:6379",
        password_file=REDIS_PASSWORD,
    )
    apt.packages(name="prometheus-redis-exporter", packages=["prometheus-redis-exporter"], no_recommends=True)
    systemd.service(
        name="prometheus-redis-exporter.service running",
        service="prometheus-redis-exporter.service",
        running=True,
        enabled=True,
        restarted=env.will_change,
    )


def app_metrics(address: str) -> None:
    backup = next((s for s in _servers() if s.role == "backup"), None)
    if backup is None:
        return
    settings = HostSettings.from_data(host.data)
    caddy.site(
        name="Caddy and PowerDNS metrics on the private address",
        path=f"{settings.sites_dir}/{METRICS_SITE}",
        content=templates.app_metrics_site(
            address=address, backup_address=backup.address, pdns_api_port=DnsSettings.from_data(host.data).pdns_api_port
        ),
        caddyfile=settings.caddyfile,
        caddy_bin=settings.caddy_bin,
    )


def prometheus(settings: MonitoringSettings) -> None:
    """Prometheus and Alertmanager on loopback, scraping every server's exporters."""
    defaults = files.put(
        name="Prometheus settings",
        dest="/etc/default/prometheus",
        mode="644",
        src=StringIO(
            f'ARGS="--web.listen-address={PROMETHEUS_LISTEN}'
            f' --storage.tsdb.retention.time={settings.monitoring_retention}"\n'
        ),
    )
    config = files.put(
        name="Prometheus scrape configuration",
        dest="/etc/prometheus/prometheus.yml",
        mode="644",
        src=StringIO(templates.prometheus_config(_servers(), settings)),
        create_remote_dir=True,
    )
    rules = files.put(
        name="codeb alert rules",
        dest="/etc/prometheus/codeb-rules.yml",
        mode="644",
        src=StringIO(templates.alert_rules(settings)),
    )
    am_defaults = files.put(
        name="Alertmanager settings",
        dest="/etc/default/prometheus-alertmanager",
        mode="644",
        src=StringIO(f'ARGS="--web.listen-address={ALERTMANAGER_LISTEN} --cluster.listen-address="\n'),
    )
    am_config = files.put(
        name="Alertmanager receiver",
        dest="/etc/prometheus/alertmanager.yml",
        mode="644",
        src=StringIO(templates.alertmanager_config(settings)),
    )
    apt.packages(
        name="Prometheus and Alertmanager", packages=["prometheus", "prometheus-alertmanager"], no_recommends=True
    )
    systemd.service(
        name="Prometheus running",
        service="prometheus.service",
        running=True,
        enabled=True,
        restarted=defaults.will_change or config.will_change or rules.will_change,
    )
    systemd.service(
        name="Alertmanager running",
        service="prometheus-alertmanager.service",
        running=True,
        enabled=True,
        restarted=am_defaults.will_change or am_config.will_change,
    )
