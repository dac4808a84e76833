"""What codeb-health reports on a server (`read`: units, disk, memory, clock, the app server's
registry and what runs; `probe`: health paths through Caddy, certificates, DNS answers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import health as health_commands


def _json(output: list[str]) -> dict[str, Any]:
    text = "\n".join(output).strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"error": f"codeb-health said: {text[-300:] or 'nothing'}"}
    return value if isinstance(value, dict) else {"error": "codeb-health gave no JSON object"}


class _HealthReport(FactBase[dict[str, Any]]):
    """A codeb-health subcommand's one JSON document (an `error` key when it gave none)."""

    def process(self, output: list[str]) -> dict[str, Any]:
        return _json(output)

    @staticmethod
    def default() -> dict[str, Any]:
        return {"error": "codeb-health gave no output"}


class HealthRead(_HealthReport):
    """`codeb-health read`: one `systemctl show` of the given units, disk and memory use, the
    server's clock and listening sockets; with ``wireguard`` the mesh's handshakes; with
    ``registry`` also the app server's registry, containers and pointers."""

    def command(
        self,
        units: Sequence[str],
        disks: Sequence[str],
        registry: str = "",
        sites: str = "",
        upstreams: str = "",
        locks: str = "",
        wireguard: str = "",
    ) -> StringCommand:
        return health_commands.read(
            units=units,
            disks=disks,
            registry=registry,
            sites=sites,
            upstreams=upstreams,
            locks=locks,
            wireguard=wireguard,
        )


class HealthProbe(_HealthReport):
    """`codeb-health probe`: each domain's health path through Caddy (SNI and Host set to the
    domain), its certificate, and our PowerDNS's A records for the given domains."""

    def command(
        self,
        targets: Sequence[tuple[str, str]],
        resolve: Sequence[str],
        scheme: str,
        port: int,
        cafiles: Sequence[str],
        dns_server: str,
        dns_port: int,
    ) -> StringCommand:
        return health_commands.probe(
            targets=targets,
            resolve=resolve,
            scheme=scheme,
            port=port,
            cafiles=cafiles,
            dns_server=dns_server,
            dns_port=dns_port,
        )


class PostgresMonitorRole(FactBase[bool]):
    """Whether PostgreSQL has the exporter's login role, a member of pg_monitor."""

    def command(self) -> StringCommand:
        from codeb_infra.commands import monitoring as monitoring_commands

        return monitoring_commands.monitor_role_present()

    def process(self, output: list[str]) -> bool:
        return bool(output) and output[-1].strip() == "1"

    @staticmethod
    def default() -> bool:
        return False


class RedisExporterEnv(FactBase[bool]):
    """Whether the Redis exporter's environment file holds the current arguments and password
    (compared on the server; the password never leaves it)."""

    def command(self, path: str, args: str, password_file: str) -> StringCommand:
        from codeb_infra.commands import monitoring as monitoring_commands

        return monitoring_commands.redis_env_current(path, args, password_file)

    def process(self, output: list[str]) -> bool:
        return bool(output) and output[-1].strip() == "same"

    @staticmethod
    def default() -> bool:
        return False


class DataReach(_HealthReport):
    """`codeb-health reach`: whether the PostgreSQL and Redis servers the env files name answer
    from this server, by variable (`{"DATABASE_URL": {"ok": false, "address": "10.77.0.3:5432",
    "error": "timed out"}}`); never the URL itself."""

    def command(self, env_files: Sequence[str]) -> StringCommand:
        return health_commands.reach(env_files=env_files)
