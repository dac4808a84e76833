"""PowerDNS command lines: HTTP API calls made on the server through codeb-pdns, and the one-time
setup of its key and database. The API key is read from its file on the server, never passed here."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted
from codeb_infra.domain.dns import RRset, ZoneSpec


class PowerDnsApi(BaseModel):
    """Where the server-side client is and which API and key file it uses."""

    model_config = ConfigDict(frozen=True)

    tool: str = "/opt/codeb/bin/codeb-pdns"
    url: str = "http://127.0.0.1:8081"
    key_file: str = "/etc/codeb/secrets/pdns-api.key"

    @field_validator("tool", "key_file")
    @classmethod
    def _path(cls, value: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9._/-]+", value):
            raise ValueError("must be an absolute path of letters, digits and . _ / -")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # The API listens on loopback only; its key must never travel over a network.
        if not re.fullmatch(r"http://(127\.0\.0\.1|localhost|\[::1\]):[0-9]{1,5}", value):
            raise ValueError("must be http://127.0.0.1:PORT (PowerDNS's API on the server's loopback)")
        return value


def _tool(api: PowerDnsApi, *args: Any) -> StringCommand:
    return command("python3", quoted(api.tool), "--url", quoted(api.url), "--key-file", quoted(api.key_file), *args)


def _encoded(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).decode()


def _rrset_json(rrset: RRset, changetype: str) -> dict[str, Any]:
    body: dict[str, Any] = {"name": rrset.name, "type": rrset.rtype, "changetype": changetype}
    if changetype == "REPLACE":
        body["ttl"] = rrset.ttl
        body["records"] = [{"content": content, "disabled": False} for content in rrset.contents]
        if rrset.comments:
            body["comments"] = [
                {
                    "content": c.content,
                    "account": c.account,
                    **({"modified_at": c.modified_at} if c.modified_at else {}),
                }
                for c in rrset.comments
            ]
    return body


def zones(api: PowerDnsApi) -> StringCommand:
    return _tool(api, "zones", "--unconfigured-ok")


def zone(api: PowerDnsApi, zone_: str) -> StringCommand:
    """The zone as JSON, ``null`` when PowerDNS lacks it or has no key yet (a first bootstrap)."""
    return _tool(api, "zone", "--zone", quoted(zone_), "--unconfigured-ok")


def create_zone(api: PowerDnsApi, spec: ZoneSpec) -> StringCommand:
    """A Native zone (no replication; answers come from this server's database) with SOA and NS.

    ``soa_edit_api DEFAULT`` makes PowerDNS raise the serial on every API change.
    """
    payload = {
        "name": spec.name,
        "kind": "Native",
        "account": "codeb",
        "soa_edit_api": "DEFAULT",
        "nameservers": [],
        "rrsets": [_rrset_json(spec.soa_rrset(0), "REPLACE"), _rrset_json(spec.ns_rrset(), "REPLACE")],
    }
    return _tool(api, "create-zone", "--payload", quoted(_encoded(payload)))


def change_rrsets(
    api: PowerDnsApi, zone_: str, *, replace: Sequence[RRset] = (), delete: Sequence[RRset] = ()
) -> StringCommand:
    """One PATCH: PowerDNS applies all of its RRset changes in one transaction, or none."""
    rrsets = [_rrset_json(r, "REPLACE") for r in replace] + [_rrset_json(r, "DELETE") for r in delete]
    return _tool(api, "patch", "--zone", quoted(zone_), "--payload", quoted(_encoded({"rrsets": rrsets})))


def api_key_state(api: PowerDnsApi, conf: str) -> StringCommand:
    return _tool(api, "api-key", "--conf", quoted(conf), "--check")


def api_key(api: PowerDnsApi, conf: str, group: str) -> StringCommand:
    """Generate the key on the server if it has none, and write its hash as pdns's api-key."""
    return _tool(api, "api-key", "--conf", quoted(conf), "--group", quoted(group))


def sqlite_schema(tool: str, database: str, schema: str, owner: str) -> StringCommand:
    """Create the gsqlite3 database from the packaged schema (Python's sqlite3; no sqlite3 CLI needed)."""
    return command(
        "python3",
        quoted(tool),
        "sqlite-schema",
        "--database",
        quoted(database),
        "--schema",
        quoted(schema),
        "--owner",
        quoted(owner),
    )
