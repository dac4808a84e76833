"""Per-host settings read from pyinfra host data, with the production layout as defaults."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from codeb_infra.domain import names
from codeb_infra.domain.errors import CodebError

KEYS = (
    "base_domain", "tls", "caddyfile", "codeb_dir", "caddy_bin", "grace_hours",
    "health_interval", "health_timeout", "network", "slot_units",
)


class HostSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_domain: str = "codeb.kr"
    tls: Literal["acme", "internal", "off"] = "acme"
    caddyfile: str = "/etc/caddy/Caddyfile"
    codeb_dir: str = "/opt/codeb"
    caddy_bin: str = "/usr/local/bin/caddy"
    grace_hours: float = 48.0
    health_interval: float = 1.0
    health_timeout: float = 30.0
    network: str = "codeb-main"
    slot_units: Literal["auto", "quadlet", "podman"] = "auto"

    @field_validator("base_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return names.domain_name(value)

    @field_validator("caddyfile", "codeb_dir", "caddy_bin")
    @classmethod
    def _path(cls, value: str) -> str:
        if value.startswith("-") or any(c in value for c in "\n\r\t '\"$`;&|<>{}*?"):
            raise ValueError("must be a plain path")
        return value

    @field_validator("grace_hours", "health_interval", "health_timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be positive")
        return value

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> HostSettings:
        given = {key: data.get(key) for key in KEYS if data.get(key) is not None}
        try:
            return cls(**given)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise CodebError(f"invalid host data: {problems}") from None

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

    def env_file(self, project: str, env: names.Environment) -> str:
        return posixpath.join(self.codeb_dir, "env", project, f"{env.value}.env")

    def site_file(self, project: str, env: names.Environment) -> str:
        return posixpath.join(self.sites_dir, f"{project}-{env.value}.caddy")

    def pointer_file(self, project: str, env: names.Environment, role: str) -> str:
        return posixpath.join(self.upstreams_dir, f"{project}-{env.value}.{role}")
