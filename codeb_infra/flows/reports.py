"""What the API reads from the streaming, storage and backup servers without an account there: each server
its inventory names under `codeb_report_servers` (written by bootstrap) is asked once over SSH with
the API's report key, whose forced command (codeb-report) answers only a whitelist of read-only
reports. `flows.health` and `flows.backups` parse the answers with the same facts' parsers the
CLI's reads use, so both paths hand `domain` the same input."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase

from codeb_infra.config.network import NetworkSettings
from codeb_infra.config.roles import (
    API_KNOWN_HOSTS,
    API_REPORT_KEY,
    REPORT_SERVERS_KEY,
    REPORT_USER,
    StorageSettings,
)
from codeb_infra.facts.reports import ServerReports

REPORTS = {
    "streaming": ("health",),
    "storage": ("health", "storage", "databases"),
    "backup": ("health", "backup"),
}
"""Which reports a server of each role answers (the whitelist its codeb-report config holds)."""
DATA_KEYS = (*NetworkSettings.model_fields, *StorageSettings.model_fields, "public_address")
"""The host data of a report server the API's inventory copies (settings, never a secret)."""


def server_reports(roles: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r for role in sorted(roles) for r in REPORTS.get(role, ())))


def server_entry(name: str, roles: Iterable[str], address: str, data: Any) -> dict[str, Any]:
    """One `codeb_report_servers` entry, from a server's inventory host."""
    kept = {key: data.get(key) for key in DATA_KEYS if data.get(key) is not None}
    return {"name": name, "roles": sorted(roles), "address": address, "data": dict(sorted(kept.items()))}


@dataclass(frozen=True)
class RemoteRead:
    """What one report server answered, or why it did not."""

    name: str
    roles: frozenset[str]
    data: dict[str, Any]
    asked_at: float | None
    outputs: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def parsed(self, report: str, fact: type[FactBase[Any]]) -> Any:
        """A report's output through the fact that reads the same command over SSH on the CLI's path."""
        lines = self.outputs.get(report) or []
        return fact().process(lines) if lines else fact().default()


def read_remote() -> list[RemoteRead]:
    """Ask each report server of the current host (the API's app server; none elsewhere)."""
    found = []
    for entry in host.data.get(REPORT_SERVERS_KEY) or []:
        roles = frozenset(entry["roles"])
        wanted = server_reports(roles)
        asked_at = time.time()
        answer = host.get_fact(
            ServerReports,
            key=API_REPORT_KEY,
            known_hosts=API_KNOWN_HOSTS,
            user=REPORT_USER,
            address=entry["address"],
            reports=wanted,
        )
        missing = [r for r in wanted if r not in answer.get("outputs", {})]
        error = answer.get("error") or (f"codeb-report gave no {', '.join(missing)} report" if missing else None)
        found.append(RemoteRead(entry["name"], roles, dict(entry["data"]), asked_at, answer.get("outputs", {}), error))
    return found
