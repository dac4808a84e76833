"""DNS names as codeb accepts them: zone, host, record and owner names, and which zone holds a
name. Pure; every refusal is a CodebError saying what to change."""

from __future__ import annotations

import re
from collections.abc import Iterable

from codeb_infra.domain.errors import CodebError

# Hostname labels (zones, CNAME/MX/NS targets) are letters, digits and '-'; record names may also
# hold '_' labels (_dmarc, _acme-challenge) and start with a '*' wildcard label.
_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_OWNER = re.compile(r"[a-z0-9][a-z0-9._/-]{0,99}")


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
        raise CodebError(
            f"invalid record owner {value!r}: use lowercase letters, digits and . _ / - (e.g. 'myapp/production')"
        )
    return value
