"""Names and values that end up in file paths, container names and command lines."""

from __future__ import annotations

import re
from enum import StrEnum

from codeb_infra.domain.errors import CodebError

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
# registry/namespace/name[:tag][@digest]; no whitespace, never starts with "-".
_IMAGE = re.compile(
    r"^[a-z0-9][a-z0-9._-]*(:[0-9]+)?(/[a-z0-9][a-z0-9._-]*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(@sha256:[a-f0-9]{64})?$"
)
_HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~!$&()*+,;=:@%/?-]*")


class Environment(StrEnum):
    PRODUCTION = "production"
    STAGING = "staging"


class Slot(StrEnum):
    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Slot:
        return Slot.GREEN if self is Slot.BLUE else Slot.BLUE


def project_name(value: object) -> str:
    """A project name is a DNS label: it becomes a subdomain, a database and a container name."""
    if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
        raise CodebError(
            f"invalid project name {value!r}: use 1-63 lowercase letters, digits or '-', "
            "not starting or ending with '-'"
        )
    return value


def environment(value: object) -> Environment:
    if isinstance(value, str) and value in Environment.__members__.values():
        return Environment(value)
    choices = ", ".join(e.value for e in Environment)
    raise CodebError(f"invalid environment {value!r}: use one of {choices}")


def slot(value: object) -> Slot:
    if isinstance(value, str) and value in Slot.__members__.values():
        return Slot(value)
    raise CodebError(f"invalid slot {value!r}: use blue or green")


def image_reference(value: object) -> str:
    if not isinstance(value, str) or len(value) > 512 or not _IMAGE.fullmatch(value):
        raise CodebError(
            f"invalid image {value!r}: expected a reference like "
            "'registry.example.com/team/app:1.2' or 'localhost/app:v1' (no spaces)"
        )
    return value


def is_local_image(image: str) -> bool:
    """Images under localhost/ exist only on the server; pulling them can only fail."""
    return image.startswith("localhost/")


def domain_name(value: object) -> str:
    if not isinstance(value, str) or not _DOMAIN.fullmatch(value.lower()) or value != value.lower():
        raise CodebError(f"invalid domain {value!r}: expected lowercase names like 'app.example.com'")
    return value


def container_port(value: object) -> int:
    port = _integer(value, "container port")
    if not 1 <= port <= 65535:
        raise CodebError(f"invalid container port {value!r}: must be between 1 and 65535")
    return port


def health_path(value: object) -> str:
    if not isinstance(value, str) or len(value) > 512 or not _HEALTH_PATH.fullmatch(value):
        raise CodebError(f"invalid health path {value!r}: must start with '/' and hold no spaces or quotes")
    return value


def container_name(project: str, env: Environment, slot_: Slot) -> str:
    return f"{project}-{env.value}-{slot_.value}"


def default_domain(project: str, env: Environment, base_domain: str) -> str:
    if env is Environment.PRODUCTION:
        return f"{project}.{base_domain}"
    return f"{project}-{env.value}.{base_domain}"


def preview_domain(project: str, env: Environment, base_domain: str) -> str:
    if env is Environment.PRODUCTION:
        return f"{project}-preview.{base_domain}"
    return f"{project}-{env.value}-preview.{base_domain}"


def _integer(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise CodebError(f"invalid {what} {value!r}: expected a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,6}", value.strip()):
        return int(value)
    raise CodebError(f"invalid {what} {value!r}: expected a whole number")
