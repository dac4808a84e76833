"""PowerDNS zones and RRsets as its HTTP API reports them (read on the server by codeb-pdns).

When the API is down or refuses the key, codeb-pdns exits non-zero with one line saying so and
pyinfra shows that line. Before the DNS bootstrap installed codeb-pdns and made the API key, the
facts return their defaults (no zones).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import powerdns as pdns_commands
from codeb_infra.commands.powerdns import PowerDnsApi
from codeb_infra.domain.dns import Comment, RRset, Zone, ZoneSummary
from codeb_infra.domain.errors import CodebError

API_DOWN = "__codeb_pdns_api_down__"


def _unless_down(command: StringCommand) -> StringCommand:
    """Read as "nothing there yet" while the API does not answer: a bootstrap that is about to
    (re)configure and restart PowerDNS must be able to plan; its writes then fail loudly if the
    API is still down when they run."""
    return StringCommand(command, "||", "echo", API_DOWN)


def _json(output: list[str], what: str) -> Any:
    try:
        return json.loads("\n".join(output))
    except ValueError as error:
        raise CodebError(f"could not read {what} from codeb-pdns: {error}") from None


def _rrset(row: dict[str, Any]) -> RRset:
    records = row.get("records") or []
    return RRset(
        name=row["name"],
        rtype=row["type"],
        ttl=row["ttl"],
        contents=tuple(sorted(r["content"] for r in records if not r.get("disabled"))),
        disabled=tuple(sorted(r["content"] for r in records if r.get("disabled"))),
        comments=tuple(
            Comment(content=c.get("content", ""), account=c.get("account", ""), modified_at=c.get("modified_at"))
            for c in row.get("comments") or []
        ),
    )


class PowerDnsZones(FactBase[list[ZoneSummary]]):
    """The zones this PowerDNS serves (without their records)."""

    def requires_command(self, api: PowerDnsApi) -> str:
        return api.tool

    def command(self, api: PowerDnsApi) -> StringCommand:
        return _unless_down(pdns_commands.zones(api))

    @staticmethod
    def default() -> list[ZoneSummary]:
        return []

    def process(self, output: list[str]) -> list[ZoneSummary]:
        if output and output[-1] == API_DOWN:
            return []
        rows = _json(output, "the zone list")
        try:
            return [
                ZoneSummary(name=r["name"], kind=r["kind"], serial=r["serial"], account=r.get("account") or "")
                for r in rows
            ]
        except (KeyError, TypeError, ValidationError) as error:
            raise CodebError(f"unexpected zone list from PowerDNS: {error}") from None


class PowerDnsZone(FactBase[Zone | None]):
    """One zone with all of its RRsets; None when PowerDNS does not have it (or is not set up yet)."""

    def requires_command(self, api: PowerDnsApi, zone: str) -> str:
        return api.tool

    def command(self, api: PowerDnsApi, zone: str) -> StringCommand:
        return _unless_down(pdns_commands.zone(api, zone))

    @staticmethod
    def default() -> Zone | None:
        return None

    def process(self, output: list[str]) -> Zone | None:
        if output and output[-1] == API_DOWN:
            return None
        body = _json(output, "the zone")
        if body is None:
            return None
        try:
            return Zone(
                name=body["name"],
                kind=body["kind"],
                serial=body["serial"],
                account=body.get("account") or "",
                rrsets=tuple(_rrset(row) for row in body.get("rrsets") or []),
            )
        except (KeyError, TypeError, ValidationError) as error:
            raise CodebError(f"unexpected zone data from PowerDNS: {error}") from None


class PowerDnsApiKey(FactBase[str]):
    """State of the API key: ``ok``, ``missing``, ``exposed`` (not 0600), ``unconfigured`` or ``mismatch``."""

    def requires_command(self, api: PowerDnsApi, conf: str) -> str:
        return api.tool  # installed executable; absent before the first bootstrap

    def command(self, api: PowerDnsApi, conf: str) -> StringCommand:
        return pdns_commands.api_key_state(api, conf)

    @staticmethod
    def default() -> str:
        return "missing"

    def process(self, output: list[str]) -> str:
        return output[-1].strip() if output else "missing"
