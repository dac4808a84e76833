"""DNS zones and records as codeb manages them in PowerDNS: names (``names``), values and TTLs
(``values``), zones and RRsets (``models``) and the plans comparing wanted with live (``plans``).
Pure: no I/O; every refusal is a CodebError saying what to change."""

from __future__ import annotations

from codeb_infra.domain.dns.models import OWNER_ACCOUNT, Comment, RRset, Soa, Zone, ZoneSpec, ZoneSummary, owner_comment
from codeb_infra.domain.dns.names import host_name, in_zone, owner_name, record_name, zone_for, zone_name
from codeb_infra.domain.dns.plans import (
    ADDRESS_TYPES,
    RecordChange,
    RecordSpec,
    ZoneChange,
    check_cname_rules,
    owned_rrsets,
    plan_addresses,
    plan_record,
    plan_zone,
    record_spec,
    zone_spec,
)
from codeb_infra.domain.dns.values import (
    TTL_MAX,
    TTL_MIN,
    RecordType,
    record_content,
    record_type,
    ttl_seconds,
    txt_content,
    txt_text,
)

__all__ = [
    "ADDRESS_TYPES",
    "OWNER_ACCOUNT",
    "TTL_MAX",
    "TTL_MIN",
    "Comment",
    "RRset",
    "RecordChange",
    "RecordSpec",
    "RecordType",
    "Soa",
    "Zone",
    "ZoneChange",
    "ZoneSpec",
    "ZoneSummary",
    "check_cname_rules",
    "host_name",
    "in_zone",
    "owned_rrsets",
    "owner_comment",
    "owner_name",
    "plan_addresses",
    "plan_record",
    "plan_zone",
    "record_content",
    "record_name",
    "record_spec",
    "record_type",
    "ttl_seconds",
    "txt_content",
    "txt_text",
    "zone_for",
    "zone_name",
    "zone_spec",
]
