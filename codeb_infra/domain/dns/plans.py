"""Plans: a wanted zone or RRset compared with the live zone gives the change to make, or None.
The rules between RRsets of one zone (CNAME beside other data, records codeb does not own) are
enforced here. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.dns.models import RRset, Soa, Zone, ZoneSpec, owner_comment
from codeb_infra.domain.dns.names import host_name, owner_name, record_name, zone_for, zone_name
from codeb_infra.domain.dns.values import RecordType, record_content, record_type, ttl_seconds
from codeb_infra.domain.errors import CodebError


def zone_spec(
    *,
    zone: object,
    nameservers: Sequence[str],
    hostmaster: str | None = None,
    default_ttl: object = 3600,
    negative_ttl: object = 3600,
) -> ZoneSpec:
    name = zone_name(zone)
    if isinstance(nameservers, str) or not nameservers:
        raise CodebError(f"zone {name} needs at least one nameserver (a list like ['ns1.example.com'])")
    servers = tuple(dict.fromkeys(host_name(ns, "nameserver") for ns in nameservers))
    if hostmaster is None:
        mailbox = f"hostmaster.{name}"
    elif isinstance(hostmaster, str) and hostmaster.count("@") == 1:
        local, domain = hostmaster.split("@")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", local.lower()):
            raise CodebError(f"invalid hostmaster {hostmaster!r}: the part before '@' must be one plain label")
        mailbox = f"{local.lower()}.{host_name(domain, 'hostmaster domain')}"
    else:
        mailbox = host_name(hostmaster, "hostmaster")
    default = ttl_seconds(default_ttl)
    negative = ttl_seconds(negative_ttl)
    return ZoneSpec(
        name=name,
        soa=Soa(primary=servers[0], hostmaster=mailbox, negative_ttl=negative),
        nameservers=servers,
        default_ttl=default,
    )


class ZoneChange(BaseModel):
    """What ``zone`` must do: create the zone, or replace its SOA and/or NS RRsets."""

    model_config = ConfigDict(frozen=True)

    create: bool = False
    replace: tuple[RRset, ...] = ()


def plan_zone(spec: ZoneSpec, live: Zone | None) -> ZoneChange | None:
    if live is None:
        return ZoneChange(create=True)
    replace = []
    live_soa = live.rrset(spec.name, "SOA")
    parsed = live.soa
    if live_soa is None or parsed is None or parsed[0] != spec.soa or live_soa.ttl != spec.default_ttl:
        replace.append(spec.soa_rrset(parsed[1] if parsed else live.serial))
    live_ns = live.rrset(spec.name, "NS")
    wanted_ns = spec.ns_rrset()
    if (
        live_ns is None
        or set(live_ns.contents) != set(wanted_ns.contents)
        or live_ns.disabled
        or live_ns.ttl != spec.default_ttl
    ):
        replace.append(wanted_ns)
    return ZoneChange(replace=tuple(replace)) if replace else None


# ---- records -----------------------------------------------------------------------------------


class RecordSpec(BaseModel):
    """One wanted RRset: name + type → values + TTL, owned by ``owner``."""

    model_config = ConfigDict(frozen=True)

    zone: str
    name: str
    rtype: RecordType
    contents: tuple[str, ...]
    ttl: int | None
    owner: str


def record_spec(
    *,
    zone: object,
    name: object,
    rtype: object,
    contents: object = (),
    ttl: object = None,
    owner: object = "codeb",
    present: bool = True,
) -> RecordSpec:
    """Validate and normalise a wanted RRset (``present=False``: one that must not exist)."""
    zone_ = zone_name(zone)
    name_ = record_name(name)
    zone_for(name_, [zone_])
    type_ = record_type(rtype)
    values = [contents] if isinstance(contents, str) else list(contents)  # type: ignore[call-overload]
    canonical = tuple(sorted(dict.fromkeys(record_content(type_, v) for v in values))) if present else ()
    if present and not canonical:
        raise CodebError(f"{name_} {type_.value}: give at least one value (or present=False to delete the RRset)")
    if type_ is RecordType.CNAME and len(canonical) > 1:
        raise CodebError(f"{name_} CNAME: a name has at most one CNAME target, got {len(canonical)}")
    if type_ is RecordType.CNAME and name_ == zone_:
        raise CodebError(
            f"{name_} CNAME: the zone apex holds SOA and NS records, so it cannot be a CNAME; use A/AAAA records"
        )
    return RecordSpec(
        zone=zone_,
        name=name_,
        rtype=type_,
        contents=canonical,
        ttl=None if ttl is None else ttl_seconds(ttl),
        owner=owner_name(owner),
    )


def check_cname_rules(spec: RecordSpec, existing: Iterable[RRset]) -> None:
    """A CNAME cannot share its name with other data (RFC 1034 3.6.2), whichever is added second."""
    others = sorted({r.rtype for r in existing if r.name == spec.name and r.rtype != spec.rtype})
    if spec.rtype is RecordType.CNAME and others:
        raise CodebError(
            f"{spec.name} CNAME: the name already holds {', '.join(others)} data and a CNAME cannot sit "
            "beside other data; remove those RRsets first or use A/AAAA records"
        )
    if spec.rtype is not RecordType.CNAME and "CNAME" in others:
        raise CodebError(
            f"{spec.name} {spec.rtype.value}: the name is a CNAME and a CNAME cannot sit beside other data; "
            "remove the CNAME first or put the record on another name"
        )


def _check_ownership(spec: RecordSpec, current: RRset, take_over: bool) -> None:
    if take_over or current.owner == spec.owner:
        return
    who = "was not created by codeb (added by hand?)" if current.owner is None else f"belongs to {current.owner!r}"
    raise CodebError(
        f"{spec.name} {spec.rtype.value} already exists and {who}; codeb leaves it alone. "
        "Remove or rename it, or pass take_over=True to manage it from now on"
    )


class RecordChange(BaseModel):
    """What ``record`` must do: replace the RRset with ``rrset`` or delete it."""

    model_config = ConfigDict(frozen=True)

    rrset: RRset
    delete: bool = False


def plan_record(
    spec: RecordSpec, zone: Zone | None, *, present: bool = True, take_over: bool = False, fallback_ttl: int = 3600
) -> RecordChange | None:
    """Compare a wanted RRset with the live zone: None when nothing needs to change."""
    existing = zone.at(spec.name) if zone else ()
    current = next((r for r in existing if r.rtype == spec.rtype.value), None)
    if not present:
        if current is None:
            return None
        _check_ownership(spec, current, take_over)
        return RecordChange(rrset=current, delete=True)
    check_cname_rules(spec, existing)
    wanted_ttl = spec.ttl if spec.ttl is not None else (zone.default_ttl if zone and zone.default_ttl else fallback_ttl)
    if current is not None:
        _check_ownership(spec, current, take_over)
    comments = (current.other_comments if current else ()) + (owner_comment(spec.owner),)
    wanted = RRset(name=spec.name, rtype=spec.rtype.value, ttl=wanted_ttl, contents=spec.contents, comments=comments)
    if (
        current is not None
        and current.owner == spec.owner
        and current.ttl == wanted_ttl
        and set(current.contents) == set(spec.contents)
        and not current.disabled
    ):
        return None
    return RecordChange(rrset=wanted)


def owned_rrsets(zone: Zone | None, owner: object) -> tuple[RRset, ...]:
    owner_ = owner_name(owner)
    return zone.owned_by(owner_) if zone else ()


ADDRESS_TYPES = (RecordType.A, RecordType.AAAA)


def plan_addresses(
    *,
    zone: object,
    names: Sequence[str],
    addresses: dict[str, str],
    owner: object,
    live: Zone | None,
    ttl: object = None,
    present: bool = True,
    take_over: bool = False,
    prune: bool = False,
) -> tuple[tuple[RRset, ...], tuple[RRset, ...]]:
    """Names that point at addresses (``{"A": ipv4, "AAAA": ipv6}``): the RRsets to replace and to delete.

    An address type not given (or ``present=False``) means this owner's RRset of that type goes;
    the same type made by hand or by another owner stays untouched. ``prune`` also deletes this
    owner's A/AAAA RRsets at names not listed (a renamed domain).
    """
    if isinstance(names, str) or not names:
        raise CodebError("give the names to point at the addresses as a list, e.g. ['myapp.codeb.kr']")
    unknown = set(addresses) - {t.value for t in ADDRESS_TYPES}
    if unknown:
        raise CodebError(f"addresses are keyed by record type A or AAAA, not {', '.join(sorted(unknown))}")
    if present and not any(addresses.values()):
        raise CodebError("no address to point the names at: set host data public_address (and public_address6)")
    replace: list[RRset] = []
    delete: list[RRset] = []
    for name in names:
        for rtype in ADDRESS_TYPES:
            value = addresses.get(rtype.value) if present else None
            spec = record_spec(
                zone=zone,
                name=name,
                rtype=rtype,
                contents=[value] if value else (),
                ttl=ttl,
                owner=owner,
                present=bool(value),
            )
            if value:
                change = plan_record(spec, live, take_over=take_over)
                if change is not None:
                    replace.append(change.rrset)
                continue
            current = live.rrset(spec.name, rtype.value) if live else None
            if current is not None and (current.owner == spec.owner or take_over):
                delete.append(current)
    if prune and live is not None:
        listed = {record_name(name) for name in names}
        delete += [
            r for r in owned_rrsets(live, owner) if r.name not in listed and r.rtype in {t.value for t in ADDRESS_TYPES}
        ]
    return tuple(replace), tuple(delete)
