"""Record types, TTLs and record values in the canonical form PowerDNS answers with, so that a
wanted value and a live one compare exactly. Pure."""

from __future__ import annotations

import ipaddress
from enum import StrEnum

from codeb_infra.domain.dns.names import host_name
from codeb_infra.domain.errors import CodebError

TTL_MIN = 60
TTL_MAX = 604800
_TXT_CHUNK = 255
_TXT_MAX = 4000


class RecordType(StrEnum):
    A = "A"
    AAAA = "AAAA"
    CNAME = "CNAME"
    TXT = "TXT"
    MX = "MX"


def ttl_seconds(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not TTL_MIN <= value <= TTL_MAX:
        raise CodebError(f"invalid TTL {value!r}: use whole seconds from {TTL_MIN} to {TTL_MAX} (one week)")
    return value


def record_type(value: object) -> RecordType:
    if isinstance(value, str) and value.upper() in RecordType.__members__.values():
        return RecordType(value.upper())
    raise CodebError(f"unsupported record type {value!r}: use one of {', '.join(t.value for t in RecordType)}")


def txt_content(text: object) -> str:
    """Quote a TXT value the way PowerDNS stores it: 255-byte character-strings, `"` and `\\` escaped."""
    if not isinstance(text, str) or not text.isascii() or any(not 0x20 <= ord(c) <= 0x7E for c in text):
        raise CodebError(f"invalid TXT value {text!r}: use printable ASCII text (no tabs, newlines or other controls)")
    if len(text) > _TXT_MAX:
        raise CodebError(f"invalid TXT value: {len(text)} characters, at most {_TXT_MAX}")
    chunks = [text[i : i + _TXT_CHUNK] for i in range(0, len(text), _TXT_CHUNK)] or [""]
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
