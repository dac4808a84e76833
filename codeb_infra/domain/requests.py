"""What a user asks for, validated before anything touches a server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain import names
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.releases import release_step

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SlotRequest(BaseModel):
    """promote / rollback / cleanup / status of one project and environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    env: Environment = Environment.PRODUCTION
    force: bool = False
    to: Slot | None = None
    break_lock: bool = False
    lock_wait: float = 0.0
    watch: bool = True  # promote: the app server watches the new release (host data watch_minutes)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SlotRequest:
        return cls(
            **_common(data),
            to=names.slot(data.get("to")) if data.get("to") else None,
            watch=flag(data.get("watch", True), "watch"),
        )


class DeployRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    image: str
    env: Environment = Environment.PRODUCTION
    container_port: int = 3000
    health_path: str = "/health"
    domain: str | None = None
    aliases: tuple[str, ...] | None = None  # custom domains; None keeps what the project has
    push: bool = False
    force: bool = False
    break_lock: bool = False
    lock_wait: float = 0.0
    env_version: int | None = None  # a stored env version the slot reads instead of the live env file
    migrate: str | None = None  # run once in the new image before its health check
    contract: str | None = None  # run by cleanup once the previous release's grace period ended

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> DeployRequest:
        if not data.get("image"):
            raise CodebError("missing image: pass --data image=REFERENCE")
        domain = data.get("domain")
        return cls(
            **_common(data),
            image=names.image_reference(data.get("image")),
            container_port=names.container_port(data.get("container_port", 3000)),
            health_path=names.health_path(data.get("health_path", "/health")),
            domain=names.domain_name(domain) if domain else None,
            aliases=_aliases(data.get("aliases")),
            push=flag(data.get("push", False), "push"),
            migrate=release_step(data.get("migrate"), "migrate"),
            contract=release_step(data.get("contract"), "contract"),
        )


def _aliases(value: object) -> tuple[str, ...] | None:
    """Custom domains, as a list or "a.example.com,b.example.com"; "" clears them."""
    if value is None:
        return None
    parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return tuple(dict.fromkeys(names.domain_name(part) for part in parts))


def flag(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CodebError(f"invalid {what} {value!r}: use true or false")


def seconds(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CodebError(f"invalid {what} {value!r}: expected seconds") from None
    if not 0 <= number <= 86400:
        raise CodebError(f"invalid {what} {value!r}: expected 0 to 86400 seconds")
    return number


def _common(data: Mapping[str, Any]) -> dict[str, Any]:
    if not data.get("project"):
        raise CodebError("missing project: pass --data project=NAME")
    return {
        "project": names.project_name(data.get("project")),
        "env": names.environment(data.get("env", "production")),
        "force": flag(data.get("force", False), "force"),
        "break_lock": flag(data.get("break_lock", False), "break_lock"),
        "lock_wait": seconds(data.get("lock_wait", 0), "lock_wait"),
    }
