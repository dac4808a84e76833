"""DNS zones and records as codeb manages them in PowerDNS: names, values, TTLs and the rules
between RRsets of one zone. Pure: no I/O; every refusal is a CodebError saying what to change."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.errors import CodebError

TTL_MIN = 60
TTL_MAX = 604800
OWNER_ACCOUNT = "codeb"  # the comment account that marks an RRset as codeb's
_OWNER_PREFIX = "owner="

# Hostname labels (zones, CNAME/MX/NS targets) are letters, digits and '-'; record names may also
# hold '_' labels (_dmarc, _acme-challenge) and start with a '*' wildcard label.
_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_OWNER = re.compile(r"[a-z0-9][a-z0-9._/-]{0,99}")
_TXT_CHUNK = 255
_TXT_MAX = 4000


class RecordType(StrEnum):
    A = "A"
    AAAA = "AAAA"
    CNAME = "CNAME"
    TXT = "TXT"
    MX = "MX"


# ---- names -------------------------------------------------------------------------------------


def _labels(value: object, what: str) -> list[str]:
    if not isinstance(value, str) or not value or value.strip() != value:
        raise CodebError(f"invalid {what} {value!r}: expected a name like 'app.example.com'")
    if not value.isascii():
        raise CodebError(f"invalid {what} {value!r}: write international names in their xn-- (punycode) form")
    text = value.lower().removesuffix(".")
    if not text or len(text) > 253:
        raise CodebError(f"invalid {what} {value!r}: a name has 1 to 253 characters")
    return text.split(".")


def zone_name(value: object) -> str:
    """An absolute zone name (``example.com.``): at least two hostname labels."""
    labels = _labels(value, "zone name")
    if len(labels) < 2 or not all(_HOST_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise CodebError(
            f"invalid zone name {value!r}: use lowercase labels of letters, digits and '-' "
            "(1-63 characters each, not starting or ending with '-'), like 'example.com'"
        )
    return ".".join(labels) + "."


def host_name(value: object, what: str = "host name") -> str:
    """An absolute host name, as CNAME and MX targets and nameservers need (``mail.example.com.``)."""
    labels = _labels(value, what)
    if not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise CodebError(
            f"invalid {what} {value!r}: use labels of letters, digits, '-' and '_' like 'mail.example.com'"
        )
    return ".".join(labels) + "."


def record_name(value: object) -> str:
    """An absolute record name; ``_service`` labels and one leading ``*`` wildcard are allowed."""
    labels = _labels(value, "record name")
    body = labels[1:] if labels[0] == "*" else labels
    if not body or not all(_LABEL.fullmatch(label) for label in body):
        raise CodebError(
            f"invalid record name {value!r}: use labels of letters, digits, '-' and '_' "
            "(a '*' only as the first label), like 'www.example.com'"
        )
    return ".".join(labels) + "."


def in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def zone_for(name: object, zones: Iterable[str]) -> str:
    """The most specific of ``zones`` that holds ``name``; refuses a name outside all of them."""
    absolute = record_name(name)
    managed = sorted({zone_name(z) for z in zones}, key=len, reverse=True)
    for zone in managed:
        if in_zone(absolute, zone):
            return zone
    hint = f" (names are absolute: write e.g. {absolute}{managed[0]})" if managed and absolute.count(".") == 1 else ""
    listed = ", ".join(sorted(managed)) or "none"
    raise CodebError(f"record {absolute} is outside any zone codeb manages (zones: {listed}){hint}")


def owner_name(value: object) -> str:
    if not isinstance(value, str) or not _OWNER.fullmatch(value):
        raise CodebError(f"invalid record owner {value!r}: use lowercase letters, digits and . _ / - (e.g. 'myapp/production')")
    return value


# ---- values ------------------------------------------------------------------------------------


def ttl_seconds(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not TTL_MIN <= value <= TTL_MAX:
        raise CodebError(f"invalid TTL {value!r}: use whole seconds from {TTL_MIN} to {TTL_MAX} (one week)")
    return value


def record_type(value: object) -> RecordType:
    try:
        return RecordType(value.upper() if isinstance(value, str) else value)
    except ValueError:
        raise CodebError(f"unsupported record type {value!r}: use one of {', '.join(t.value for t in RecordType)}") from None


def txt_content(text: object) -> str:
    """Quote a TXT value the way PowerDNS stores it: 255-byte character-strings, `"` and `\\` escaped."""
    if not isinstance(text, str) or not text.isascii() or any(not 0x20 <= ord(c) <= 0x7E for c in text):
        raise CodebError(f"invalid TXT value {text!r}: use printable ASCII text (no tabs, newlines or other controls)")
    if len(text) > _TXT_MAX:
        raise CodebError(f"invalid TXT value: {len(text)} characters, at most {_TXT_MAX}")
    chunks = [text[i:i + _TXT_CHUNK] for i in range(0, len(text), _TXT_CHUNK)] or [""]
    return " ".join('"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"' for chunk in chunks)


def txt_text(content: str) -> str:
    """The text of a TXT content as PowerDNS returns it (the inverse of ``txt_content``)."""
    text, quoted, escaped = [], False, False
    for char in content:
        if escaped:
            text.append(char)
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif quoted:
            text.append(char)
    return "".join(text)


def record_content(rtype: RecordType, value: object) -> str:
    """One record's value in the canonical form PowerDNS answers with (so comparisons are exact)."""
    if rtype is RecordType.TXT:
        return txt_content(value)
    if not isinstance(value, str):
        raise CodebError(f"invalid {rtype.value} value {value!r}: expected text")
    if rtype is RecordType.A:
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise CodebError(f"invalid A value {value!r}: expected an IPv4 address like 192.0.2.10") from None
    if rtype is RecordType.AAAA:
        try:
            return ipaddress.IPv6Address(value).compressed
        except ValueError:
            raise CodebError(f"invalid AAAA value {value!r}: expected an IPv6 address like 2001:db8::10") from None
    if rtype is RecordType.CNAME:
        return host_name(value, "CNAME target")
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or not 0 <= int(parts[0]) <= 65535:
        raise CodebError(f"invalid MX value {value!r}: expected 'PRIORITY HOST' like '10 mail.example.com'")
    return f"{int(parts[0])} {host_name(parts[1], 'MX host')}"


# ---- RRsets and zones --------------------------------------------------------------------------


class Comment(BaseModel):
    model_config = ConfigDict(frozen=True)

    content: str
    account: str = ""
    modified_at: int | None = None


class RRset(BaseModel):
    """All records of one name and type, as PowerDNS holds them."""

    model_config = ConfigDict(frozen=True)

    name: str
    rtype: str
    ttl: int
    contents: tuple[str, ...]
    disabled: tuple[str, ...] = ()
    comments: tuple[Comment, ...] = ()

    @property
    def owner(self) -> str | None:
        """Who in codeb created this RRset (from its comment), None for RRsets made by other means."""
        for comment in self.comments:
            if comment.account == OWNER_ACCOUNT and comment.content.startswith(_OWNER_PREFIX):
                return comment.content[len(_OWNER_PREFIX):]
        return None

    @property
    def other_comments(self) -> tuple[Comment, ...]:
        return tuple(c for c in self.comments if c.account != OWNER_ACCOUNT)

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.rtype


def owner_comment(owner: str) -> Comment:
    return Comment(content=f"{_OWNER_PREFIX}{owner}", account=OWNER_ACCOUNT)


class Soa(BaseModel):
    """SOA fields codeb sets; PowerDNS owns the serial (SOA-EDIT-API bumps it on every change)."""

    model_config = ConfigDict(frozen=True)

    primary: str
    hostmaster: str
    refresh: int = 10800
    retry: int = 3600
    expire: int = 604800
    negative_ttl: int = 3600

    def content(self, serial: int) -> str:
        return f"{self.primary} {self.hostmaster} {serial} {self.refresh} {self.retry} {self.expire} {self.negative_ttl}"

    @classmethod
    def parse(cls, content: str) -> tuple[Soa, int]:
        parts = content.split()
        if len(parts) != 7 or not all(p.isdigit() for p in parts[2:]):
            raise CodebError(f"unexpected SOA content {content!r} from PowerDNS")
        primary, hostmaster, serial, refresh, retry, expire, minimum = parts
        return cls(primary=primary, hostmaster=hostmaster, refresh=int(refresh), retry=int(retry),
                   expire=int(expire), negative_ttl=int(minimum)), int(serial)


class Zone(BaseModel):
    """One zone as PowerDNS reports it, with all of its RRsets."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    serial: int
    account: str = ""
    rrsets: tuple[RRset, ...] = ()

    def rrset(self, name: str, rtype: str) -> RRset | None:
        return next((r for r in self.rrsets if r.name == name and r.rtype == rtype), None)

    def at(self, name: str) -> tuple[RRset, ...]:
        return tuple(r for r in self.rrsets if r.name == name)

    @property
    def soa(self) -> tuple[Soa, int] | None:
        found = self.rrset(self.name, "SOA")
        return Soa.parse(found.contents[0]) if found and found.contents else None

    @property
    def default_ttl(self) -> int | None:
        found = self.rrset(self.name, "SOA")
        return found.ttl if found else None

    def owned_by(self, owner: str) -> tuple[RRset, ...]:
        return tuple(r for r in self.rrsets if r.owner == owner)


class ZoneSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    serial: int
    account: str = ""


class ZoneSpec(BaseModel):
    """A zone as codeb wants it: SOA fields, nameservers and the TTL of both (the zone's default)."""

    model_config = ConfigDict(frozen=True)

    name: str
    soa: Soa
    nameservers: tuple[str, ...]
    default_ttl: int

    def soa_rrset(self, serial: int) -> RRset:
        return RRset(name=self.name, rtype="SOA", ttl=self.default_ttl, contents=(self.soa.content(serial),))

    def ns_rrset(self) -> RRset:
        return RRset(name=self.name, rtype="NS", ttl=self.default_ttl, contents=self.nameservers)


def zone_spec(*, zone: object, nameservers: Sequence[str], hostmaster: str | None = None,
              default_ttl: object = 3600, negative_ttl: object = 3600) -> ZoneSpec:
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
    return ZoneSpec(name=name, soa=Soa(primary=servers[0], hostmaster=mailbox, negative_ttl=negative),
                    nameservers=servers, default_ttl=default)


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
    if live_ns is None or set(live_ns.contents) != set(wanted_ns.contents) or live_ns.disabled or live_ns.ttl != spec.default_ttl:
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


def record_spec(*, zone: object, name: object, rtype: object, contents: object = (), ttl: object = None,
                owner: object = "codeb", present: bool = True) -> RecordSpec:
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
        raise CodebError(f"{name_} CNAME: the zone apex holds SOA and NS records, so it cannot be a CNAME; use A/AAAA records")
    return RecordSpec(zone=zone_, name=name_, rtype=type_, contents=canonical,
                      ttl=None if ttl is None else ttl_seconds(ttl), owner=owner_name(owner))


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


def plan_record(spec: RecordSpec, zone: Zone | None, *, present: bool = True, take_over: bool = False,
                fallback_ttl: int = 3600) -> RecordChange | None:
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
    if (current is not None and current.owner == spec.owner and current.ttl == wanted_ttl
            and set(current.contents) == set(spec.contents) and not current.disabled):
        return None
    return RecordChange(rrset=wanted)


def owned_rrsets(zone: Zone | None, owner: object) -> tuple[RRset, ...]:
    owner_ = owner_name(owner)
    return zone.owned_by(owner_) if zone else ()


ADDRESS_TYPES = (RecordType.A, RecordType.AAAA)


def plan_addresses(*, zone: object, names: Sequence[str], addresses: dict[str, str], owner: object,
                   live: Zone | None, ttl: object = None, present: bool = True, take_over: bool = False,
                   prune: bool = False) -> tuple[tuple[RRset, ...], tuple[RRset, ...]]:
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
            spec = record_spec(zone=zone, name=name, rtype=rtype, contents=[value] if value else (), ttl=ttl,
                               owner=owner, present=bool(value))
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
        delete += [r for r in owned_rrsets(live, owner)
                   if r.name not in listed and r.rtype in {t.value for t in ADDRESS_TYPES}]
    return tuple(replace), tuple(delete)
