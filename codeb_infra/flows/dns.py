"""A project's address records in the zones this app server's PowerDNS serves: its domain and
preview domain point at the app server. Names in zones served elsewhere are left to their owner."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host

from codeb_infra.config.app import DnsSettings
from codeb_infra.domain import dns
from codeb_infra.domain.names import Environment
from codeb_infra.facts.powerdns import PowerDnsZone


@dataclass(frozen=True)
class ZoneRecords:
    zone: str
    names: tuple[str, ...]
    owner: str
    current: bool


def planned_records(project: str, env: Environment, domains: list[str]) -> list[ZoneRecords]:
    """Per zone we serve, the project's names and whether PowerDNS already answers them right.

    Raises CodebError (before any change) when a name is taken by a record made by hand.
    """
    settings = DnsSettings.from_data(host.data)
    addresses = settings.addresses()
    if not addresses:
        return []
    by_zone: dict[str, list[str]] = {}
    for domain in domains:
        zone = settings.zone_of(domain)
        if zone is not None:
            by_zone.setdefault(zone, []).append(domain)
    owner = f"{project}/{env.value}"
    found = []
    for zone, zone_names in by_zone.items():
        live = host.get_fact(PowerDnsZone, api=settings.api, zone=zone)
        if live is None:
            continue  # the zone is not served by this app server's PowerDNS (or it is not installed)
        replace, delete = dns.plan_addresses(
            zone=zone,
            names=zone_names,
            addresses=addresses,
            owner=owner,
            live=live,
            prune=True,
        )
        found.append(ZoneRecords(zone=zone, names=tuple(zone_names), owner=owner, current=not replace and not delete))
    return found


def zones_with_records(project: str, env: Environment) -> list[tuple[str, str]]:
    """(zone, owner) for each zone of ours that still holds records of this project/env."""
    settings = DnsSettings.from_data(host.data)
    owner = f"{project}/{env.value}"
    found = []
    for zone in settings.zones:
        live = host.get_fact(PowerDnsZone, api=settings.api, zone=zone)
        if live is not None and dns.owned_rrsets(live, owner):
            found.append((zone, owner))
    return found


def external_records(domains: list[str]) -> list[dict[str, str | None]]:
    """Domains whose DNS is served elsewhere: the record their owner must create for them."""
    settings = DnsSettings.from_data(host.data)
    addresses: dict[str, str | None] = {**settings.addresses()} or {"A": None}
    return [
        {"name": domain, "type": rtype, "value": address}
        for domain in domains
        if settings.zone_of(domain) is None
        for rtype, address in addresses.items()
    ]
