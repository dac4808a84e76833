"""PowerDNS zones and RRsets through its HTTP API, plus the API key and database it needs.

Operations touch only the RRsets they are asked about. Each RRset codeb writes carries a comment
(account ``codeb``, content ``owner=OWNER``) stored by PowerDNS with the RRset itself, so codeb
knows which RRsets are its own without adding records to the zone; RRsets made by hand or by
another owner are refused unless ``take_over=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File

from codeb_infra.commands import powerdns as pdns_commands
from codeb_infra.commands.powerdns import PowerDnsApi
from codeb_infra.domain import dns
from codeb_infra.facts.powerdns import PowerDnsApiKey, PowerDnsZone
from codeb_infra.operations import Commands

DEFAULT_API = PowerDnsApi()
SQLITE_SCHEMA = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"


@operation()
def zone(
    *,
    zone: str,
    nameservers: Sequence[str],
    hostmaster: str | None = None,
    default_ttl: int = 3600,
    negative_ttl: int = 3600,
    api: PowerDnsApi = DEFAULT_API,
) -> Commands:
    """
    Ensure a Native zone exists with this SOA, these nameservers and default TTL.

    PowerDNS keeps the serial (``SOA-EDIT-API DEFAULT``: it rises on every change made through
    the API); this operation compares everything else and replaces SOA and NS in one change.

    + zone: the zone, e.g. ``codeb.kr``
    + nameservers: NS names; the first is the SOA's primary, e.g. ``["ns1.codeb.kr"]``
    + hostmaster: mailbox, ``hostmaster@codeb.kr`` or ``hostmaster.codeb.kr.`` (default ``hostmaster.ZONE``)
    + default_ttl: TTL of SOA and NS, and of records given no TTL (60..604800)
    + negative_ttl: how long resolvers cache "no such name" (the SOA minimum)
    + api: where codeb-pdns, the API and the key file are on the server

    **Example:**

    .. code:: python

        powerdns.zone(zone="codeb.kr", nameservers=["ns1.codeb.kr"], api=api)
    """
    spec = dns.zone_spec(
        zone=zone, nameservers=nameservers, hostmaster=hostmaster, default_ttl=default_ttl, negative_ttl=negative_ttl
    )
    change = dns.plan_zone(spec, host.get_fact(PowerDnsZone, api=api, zone=spec.name))
    if change is None:
        host.noop(f"zone {spec.name} is up to date")
        return
    if change.create:
        yield pdns_commands.create_zone(api, spec)
    else:
        yield pdns_commands.change_rrsets(api, spec.name, replace=change.replace)


@operation()
def record(
    *,
    zone: str,
    record_name: str,
    rtype: str,
    contents: Sequence[str] | str = (),
    ttl: int | None = None,
    present: bool = True,
    owner: str = "codeb",
    take_over: bool = False,
    api: PowerDnsApi = DEFAULT_API,
) -> Commands:
    """
    Make one RRset (name + type) hold exactly ``contents``, replaced atomically; or delete it.

    Validated before any command: the name must lie in ``zone``, values must suit the type
    (A: IPv4, AAAA: IPv6, CNAME: host name, TXT: plain text that this operation quotes,
    MX: ``"PRIORITY HOST"``), a CNAME cannot share its name with other data, TTL 60..604800.

    + zone: the zone that holds the name, e.g. ``codeb.kr``
    + record_name: absolute name, e.g. ``myapp.codeb.kr`` (a trailing dot is optional)
    + rtype: ``A``, ``AAAA``, ``CNAME``, ``TXT`` or ``MX``
    + contents: the values (one string or a list)
    + ttl: seconds; default: the zone's default TTL (its SOA TTL)
    + present: ``False`` deletes the RRset (if it exists)
    + owner: who in codeb this RRset belongs to, kept in its comment, e.g. ``myapp/production``
    + take_over: also replace or delete an RRset made by hand or by another owner
    + api: where codeb-pdns, the API and the key file are on the server

    **Example:**

    .. code:: python

        powerdns.record(zone="codeb.kr", record_name="myapp.codeb.kr", rtype="A",
            contents=["158.247.203.55"], owner="myapp/production", api=api)
    """
    spec = dns.record_spec(
        zone=zone, name=record_name, rtype=rtype, contents=contents, ttl=ttl, owner=owner, present=present
    )
    live = host.get_fact(PowerDnsZone, api=api, zone=spec.zone)
    change = dns.plan_record(spec, live, present=present, take_over=take_over)
    if change is None:
        state = "holds" if present else "does not exist"
        host.noop(f"{spec.name} {spec.rtype.value} {state}{' ' + ', '.join(spec.contents) if present else ''}")
        return
    if change.delete:
        yield pdns_commands.change_rrsets(api, spec.zone, delete=[change.rrset])
    else:
        yield pdns_commands.change_rrsets(api, spec.zone, replace=[change.rrset])


@operation()
def address_records(
    *,
    zone: str,
    names: Sequence[str],
    addresses: Mapping[str, str],
    owner: str,
    ttl: int | None = None,
    present: bool = True,
    take_over: bool = False,
    prune: bool = False,
    api: PowerDnsApi = DEFAULT_API,
) -> Commands:
    """
    Point names at addresses (A and/or AAAA) in one atomic change: a project's domain and preview.

    A type missing from ``addresses`` (or ``present=False``) removes this owner's RRset of that
    type; RRsets of these names made by hand or by another owner are left alone.

    + zone: the zone that holds every name, e.g. ``codeb.kr``
    + names: e.g. ``["myapp.codeb.kr", "myapp-preview.codeb.kr"]``
    + addresses: ``{"A": "158.247.203.55"}``, plus ``"AAAA"`` for IPv6 (``DnsSettings.addresses()``)
    + owner: e.g. ``myapp/production``; written into each RRset's comment
    + ttl: seconds; default: the zone's default TTL
    + present: ``False`` removes this owner's A/AAAA RRsets of these names
    + take_over: also replace RRsets of these names made by hand or by another owner
    + prune: also delete this owner's A/AAAA RRsets at names not listed (after a domain change)

    **Example:**

    .. code:: python

        powerdns.address_records(zone="codeb.kr", names=["myapp.codeb.kr", "myapp-preview.codeb.kr"],
            addresses={"A": "158.247.203.55"}, owner="myapp/production", api=api)
    """
    zone_ = dns.zone_name(zone)
    live = host.get_fact(PowerDnsZone, api=api, zone=zone_)
    replace, delete = dns.plan_addresses(
        zone=zone_,
        names=names,
        addresses=dict(addresses),
        owner=owner,
        live=live,
        ttl=ttl,
        present=present,
        take_over=take_over,
        prune=prune,
    )
    if not replace and not delete:
        what = "point at " + ", ".join(addresses.values()) if present else "have no records of " + owner
        host.noop(f"{', '.join(names)} {what}")
        return
    yield pdns_commands.change_rrsets(api, zone_, replace=replace, delete=delete)


@operation()
def owner_records_removed(*, zone: str, owner: str, api: PowerDnsApi = DEFAULT_API) -> Commands:
    """
    Delete every RRset of ``zone`` that codeb wrote for ``owner``, in one change; others stay.

    **Example:**

    .. code:: python

        powerdns.owner_records_removed(zone="codeb.kr", owner="myapp/production", api=api)
    """
    zone_ = dns.zone_name(zone)
    owned = dns.owned_rrsets(host.get_fact(PowerDnsZone, api=api, zone=zone_), owner)
    if not owned:
        host.noop(f"{zone_} has no records of {owner}")
        return
    yield pdns_commands.change_rrsets(api, zone_, delete=owned)


@operation()
def api_key(*, conf: str, group: str = "pdns", api: PowerDnsApi = DEFAULT_API) -> Commands:
    """
    Generate the API key once on the server (``api.key_file``, 0600) and keep pdns's ``api-key``
    (in ``conf``, 0640 for ``group``) set to its scrypt hash: the plain key is never in a config,
    a command line or the output. Restart pdns when this changes.

    **Example:**

    .. code:: python

        powerdns.api_key(conf="/etc/powerdns/pdns.d/codeb-api.conf", api=api)
    """
    state = host.get_fact(PowerDnsApiKey, api=api, conf=conf)
    if state == "ok":
        host.noop(f"{conf} holds the hash of the key in {api.key_file}")
        return
    yield pdns_commands.api_key(api, conf, group)


@operation()
def sqlite_schema(
    *, database: str, schema: str = SQLITE_SCHEMA, owner: str = "pdns", tool: str = DEFAULT_API.tool
) -> Commands:
    """
    Create the gsqlite3 database from the packaged schema if it does not exist yet (never again).

    + database: the database file pdns's ``gsqlite3-database`` names
    + schema: the schema Debian's pdns-backend-sqlite3 ships
    + owner: user and group pdns runs as
    + tool: codeb-pdns on the server

    **Example:**

    .. code:: python

        powerdns.sqlite_schema(database="/var/lib/powerdns/pdns.sqlite3", tool="/opt/codeb/bin/codeb-pdns")
    """
    if host.get_fact(File, path=database):
        host.noop(f"{database} exists")
        return
    yield pdns_commands.sqlite_schema(tool, database, schema, owner)
