"""Zones and RRsets as PowerDNS holds them (with codeb's owner mark in an RRset's comment), and a
zone as codeb wants it. Pure."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.errors import CodebError

OWNER_ACCOUNT = "codeb"  # the comment account that marks an RRset as codeb's
_OWNER_PREFIX = "owner="


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
                return comment.content[len(_OWNER_PREFIX) :]
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
        return (
            f"{self.primary} {self.hostmaster} {serial} {self.refresh} {self.retry} {self.expire} {self.negative_ttl}"
        )

    @classmethod
    def parse(cls, content: str) -> tuple[Soa, int]:
        parts = content.split()
        if len(parts) != 7 or not all(p.isdigit() for p in parts[2:]):
            raise CodebError(f"unexpected SOA content {content!r} from PowerDNS")
        primary, hostmaster, serial, refresh, retry, expire, minimum = parts
        return cls(
            primary=primary,
            hostmaster=hostmaster,
            refresh=int(refresh),
            retry=int(retry),
            expire=int(expire),
            negative_ttl=int(minimum),
        ), int(serial)


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
