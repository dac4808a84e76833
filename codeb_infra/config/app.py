"""Per-host settings read from pyinfra host data, with the production layout as defaults."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from codeb_infra.commands.powerdns import PowerDnsApi
from codeb_infra.config.roles import HostData
from codeb_infra.domain import dns, names
from codeb_infra.domain.errors import CodebError, host_data_error

KEYS = (
    "base_domain",
    "tls",
    "caddyfile",
    "codeb_dir",
    "caddy_bin",
    "caddy_user",
    "caddy_log_dir",
    "grace_hours",
    "health_interval",
    "health_timeout",
    "network",
    "slot_units",
    "acme_ca",
    "acme_ca_root",
    "acme_email",
    "watch_minutes",
    "watch_max_5xx",
    "watch_interval_seconds",
    "watch_window_seconds",
    "watch_min_requests",
    "watch_failures",
)

# What Caddy's global options accept as one plain token: no blanks, quotes, braces or shell syntax.
_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+=-]*)?")
_EMAIL = re.compile(r"[A-Za-z0-9._%+][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_ACME_TOKENS = {
    "acme_ca": (_URL, "an https:// ACME directory URL without spaces, quotes or braces"),
    "acme_email": (_EMAIL, "an email address like ops@example.com"),
}


class HostSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_domain: str = "codeb.kr"
    tls: Literal["acme", "internal", "off"] = "acme"
    caddyfile: str = "/etc/caddy/Caddyfile"
    codeb_dir: str = "/opt/codeb"
    caddy_bin: str = "/usr/local/bin/caddy"
    caddy_user: str = "caddy"
    """The user Caddy runs as, who must own the sites' access logs."""
    caddy_log_dir: str = "/var/log/caddy"
    grace_hours: float = 48.0
    health_interval: float = 1.0
    health_timeout: float = 30.0
    network: str = "codeb-main"
    slot_units: Literal["auto", "quadlet", "podman"] = "auto"
    acme_ca: str | None = None
    """ACME directory to get certificates from (tls=acme); None is Caddy's default, Let's Encrypt."""
    acme_ca_root: str | None = None
    """PEM root on the app server that Caddy trusts for ``acme_ca`` (a private or test CA)."""
    acme_email: str | None = None
    watch_minutes: float = 10.0
    """How long the app server watches a release after its promote (0: no watch)."""
    watch_max_5xx: float = 5.0
    """Percent of 5xx answers for the domain, over ``watch_window_seconds``, that fails the watch."""
    watch_interval_seconds: float = 10.0
    watch_window_seconds: float = 60.0
    watch_min_requests: int = 10
    watch_failures: int = 3
    """Health checks failing in a row that fail the watch."""

    @field_validator("base_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return names.domain_name(value)

    @field_validator("caddy_user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
            raise ValueError("must be a system user name")
        return value

    @field_validator("caddyfile", "codeb_dir", "caddy_bin", "caddy_log_dir")
    @classmethod
    def _path(cls, value: str) -> str:
        if value.startswith("-") or any(c in value for c in "\n\r\t '\"$`;&|<>{}*?"):
            raise ValueError("must be a plain path")
        return value

    @field_validator("acme_ca", "acme_email")
    @classmethod
    def _acme_token(cls, value: str | None, info: ValidationInfo) -> str | None:
        pattern, wanted = _ACME_TOKENS[str(info.field_name)]
        if value is not None and not pattern.fullmatch(value):
            raise ValueError(f"must be {wanted}")
        return value

    @field_validator("acme_ca_root")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is not None and not cls._path(value).startswith("/"):
            raise ValueError("must be an absolute path")
        return value

    @field_validator(
        "grace_hours",
        "health_interval",
        "health_timeout",
        "watch_interval_seconds",
        "watch_window_seconds",
        "watch_failures",
    )
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be positive")
        return value

    @field_validator("watch_minutes", "watch_max_5xx", "watch_min_requests")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must not be negative")
        return value

    @classmethod
    def from_data(cls, data: HostData) -> HostSettings:
        given = {key: data.get(key) for key in KEYS if data.get(key) is not None}
        try:
            return cls(**given)
        except ValidationError as error:
            raise host_data_error(error) from None

    @property
    def acme_options(self) -> dict[str, str]:
        """Caddy global options for ACME issuance; none unless tls is acme."""
        if self.tls != "acme":
            return {}
        given = {"email": self.acme_email, "acme_ca": self.acme_ca, "acme_ca_root": self.acme_ca_root}
        return {option: value for option, value in given.items() if value}

    @property
    def grace(self) -> timedelta:
        return timedelta(hours=self.grace_hours)

    @property
    def caddy_dir(self) -> str:
        return posixpath.dirname(self.caddyfile)

    @property
    def sites_dir(self) -> str:
        return posixpath.join(self.caddy_dir, "sites")

    @property
    def upstreams_dir(self) -> str:
        return posixpath.join(self.caddy_dir, "upstreams")

    @property
    def registry_dir(self) -> str:
        return posixpath.join(self.codeb_dir, "registry")

    @property
    def locks_dir(self) -> str:
        return posixpath.join(self.codeb_dir, "locks")

    @property
    def state_tool(self) -> str:
        return posixpath.join(self.codeb_dir, "bin", "codeb-state")

    @property
    def watch_tool(self) -> str:
        return posixpath.join(self.codeb_dir, "bin", "codeb-watch")

    def env_file(self, project: str, env: names.Environment) -> str:
        return posixpath.join(self.codeb_dir, "env", project, f"{env.value}.env")

    def master_env_file(self, project: str) -> str:
        """The project's protected variables (DATABASE_URL, POSTGRES_USER, POSTGRES_PASSWORD,
        REDIS_URL), written by provisioning; passed to slots after the env file, so they win."""
        return posixpath.join(self.codeb_dir, "env", project, "master.env")

    def site_file(self, project: str, env: names.Environment) -> str:
        return posixpath.join(self.sites_dir, f"{project}-{env.value}.caddy")

    def pointer_file(self, project: str, env: names.Environment, role: str) -> str:
        return posixpath.join(self.upstreams_dir, f"{project}-{env.value}.{role}")

    def access_log(self, project: str, env: names.Environment) -> str:
        """Caddy's access log of the project's domain (what the watch counts 5xx answers in)."""
        return posixpath.join(self.caddy_log_dir, f"{project}-{env.value}.access.log")

    def watch_spec(self, project: str, env: names.Environment) -> str:
        """What the promote hands its watch (names, paths, limits, the planned rollback; no secret)."""
        return posixpath.join(self.codeb_dir, "watch", f"{project}.{env.value}.json")

    def watch_record(self, project: str, env: names.Environment) -> str:
        """The watch's state and, after a rollback, why (in the registry; `codeb status` shows it)."""
        return posixpath.join(self.registry_dir, "watch", f"{project}.{env.value}.json")


DNS_KEYS = (
    "dns_listen",
    "dns_port",
    "pdns_api_port",
    "pdns_key_file",
    "dns_zones",
    "dns_nameservers",
    "dns_hostmaster",
    "dns_default_ttl",
    "public_address",
    "public_address6",
)


def _list(value: Any) -> Any:
    return value.replace(",", " ").split() if isinstance(value, str) else value


class DnsSettings(BaseModel):
    """The app server's PowerDNS: where it listens, its API, the zones codeb manages in it and the
    public address project records point at (host data, validated like ``HostSettings``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codeb_dir: str
    base_domain: str
    dns_listen: tuple[str, ...] = ("0.0.0.0",)
    dns_port: int = 53
    pdns_api_port: int = 8081
    pdns_key_file: str = "/etc/codeb/secrets/pdns-api.key"
    dns_zones: tuple[str, ...] = ()
    dns_nameservers: tuple[str, ...] = ()
    dns_hostmaster: str | None = None
    dns_default_ttl: int = 3600
    public_address: str | None = None
    public_address6: str | None = None

    @field_validator("dns_listen", "dns_zones", "dns_nameservers", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _list(value)

    @field_validator("dns_listen")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one address")
        return tuple(str(ipaddress.ip_address(v)) for v in value)

    @field_validator("dns_port", "pdns_api_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be a port from 1 to 65535")
        return value

    @field_validator("pdns_key_file")
    @classmethod
    def _key_path(cls, value: str) -> str:
        return HostSettings._path(value)

    @field_validator("dns_zones")
    @classmethod
    def _zones(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dns.zone_name(v) for v in value)

    @field_validator("dns_nameservers")
    @classmethod
    def _nameservers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dns.host_name(v, "nameserver") for v in value)

    @field_validator("dns_default_ttl")
    @classmethod
    def _ttl(cls, value: int) -> int:
        return dns.ttl_seconds(value)

    @field_validator("public_address", "public_address6")
    @classmethod
    def _public(cls, value: str | None, info: ValidationInfo) -> str | None:
        rtype = dns.RecordType.A if info.field_name == "public_address" else dns.RecordType.AAAA
        return None if value is None else dns.record_content(rtype, value)

    @classmethod
    def from_data(cls, data: HostData) -> DnsSettings:
        host = HostSettings.from_data(data)
        given = {key: data.get(key) for key in DNS_KEYS if data.get(key) is not None}
        if "public_address" not in given and data.get("private_address"):
            given["public_address"] = data.get("private_address")
        if "dns_listen" not in given and given.get("public_address"):
            # Not 0.0.0.0: podman's own DNS (aardvark) binds port 53 on the codeb-main gateway.
            given["dns_listen"] = [given["public_address"], "127.0.0.1"]
        try:
            settings = cls(codeb_dir=host.codeb_dir, base_domain=host.base_domain, **given)
            settings.api  # noqa: B018 - its paths are validated too
            return settings
        except ValidationError as error:
            raise host_data_error(error) from None
        except CodebError as error:
            raise CodebError(f"invalid host data: {error}") from None

    @property
    def zones(self) -> tuple[str, ...]:
        """The zones codeb manages: ``dns_zones``, by default just the base domain."""
        return self.dns_zones or (dns.zone_name(self.base_domain),)

    @property
    def nameservers(self) -> tuple[str, ...]:
        return self.dns_nameservers or (dns.host_name(f"ns1.{self.base_domain}", "nameserver"),)

    @property
    def api(self) -> PowerDnsApi:
        return PowerDnsApi(
            tool=posixpath.join(self.codeb_dir, "bin", "codeb-pdns"),
            url=f"http://127.0.0.1:{self.pdns_api_port}",
            key_file=self.pdns_key_file,
        )

    def zone_of(self, domain: str) -> str | None:
        """The managed zone that holds ``domain``; None when its DNS is served elsewhere."""
        try:
            return dns.zone_for(domain, self.zones)
        except CodebError:
            return None

    def addresses(self) -> dict[str, str]:
        """Record type → the address a project's names point at (A, and AAAA when configured)."""
        found = {"A": self.public_address, "AAAA": self.public_address6}
        return {rtype: address for rtype, address in found.items() if address}
