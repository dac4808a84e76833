"""Releases of one project/env: what each deploy put in a slot (image, image ID, env version, who,
when, health), which release a slot runs, which images to keep, and contract steps tied to grace.
Pure: records in, decisions out."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain import names
from codeb_infra.domain.changes import Change
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot

DEFAULT_KEEP = 5
VERSION_LABEL = "org.opencontainers.image.version"
ContractState = Literal["pending", "done", "cancelled", "failed"]


class ReleaseRecord(BaseModel):
    """One deploy, as the server recorded it after the health check."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    number: int
    image: str
    image_id: str | None = None
    tag: str | None = None  # the server's own tag of image_id, which keeps the image for rollbacks
    app_version: str | None = None
    env_version: int | None = None
    actor: str
    time: datetime
    slot: Slot
    health: Literal["passed", "failed"]
    container_port: int = 3000
    health_path: str = "/health"
    migrate: str | None = None
    contract: str | None = None
    contract_state: ContractState | None = None
    pruned: bool = False


class ReleaseLog(BaseModel):
    """Every release of one project/env, oldest first."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    releases: tuple[ReleaseRecord, ...] = ()

    def get(self, number: int) -> ReleaseRecord:
        for release in self.releases:
            if release.number == number:
                return release
        known = ", ".join(str(r.number) for r in self.releases) or "none yet"
        raise CodebError(f"no release {number} (releases: {known})")

    def of_slot(self, slot: Slot) -> ReleaseRecord | None:
        """The release a slot runs: the newest healthy one deployed into it."""
        found = [r for r in self.releases if r.slot is slot and r.health == "passed"]
        return found[-1] if found else None


def release_tag(project: str, env: Environment, number: int) -> str:
    """The server-side tag that pins release ``number``'s image ID (and keeps it from pruning)."""
    return f"localhost/codeb-release/{project}:{env.value}-{number}"


def keep_releases(value: object) -> int:
    try:
        number = int(str(value)) if value is not None else DEFAULT_KEEP
    except ValueError:
        number = 0
    if number < 1:
        raise CodebError(f"invalid host data keep_releases {value!r}: expected a whole number of releases, at least 1")
    return number


def release_number(value: object) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise CodebError(f"invalid release {value!r}: expected a release number like 3 (see `codeb releases`)")
    return number


def redeployable(log: ReleaseLog, number: int) -> ReleaseRecord:
    """Release ``number`` if it can be deployed again: it passed its health check and its image is kept."""
    release = log.get(number)
    if release.health != "passed":
        raise CodebError(f"release {number} failed its health check; it cannot be rolled back to")
    if release.pruned or release.tag is None:
        raise CodebError(
            f"release {number}'s image is no longer kept on the server (keep_releases); "
            f"deploy it again with --image {release.image}"
        )
    return release


def to_prune(log: ReleaseLog, keep: int) -> list[ReleaseRecord]:
    """Releases whose image tag goes: all but the newest ``keep`` healthy releases (failed ones
    keep nothing); a tag the kept releases share stays."""
    healthy = [r for r in log.releases if r.health == "passed"]
    kept = healthy[-keep:] if keep > 0 else []
    kept_tags = {r.tag for r in kept}
    return [r for r in log.releases if r not in kept and not r.pruned and r.tag and r.tag not in kept_tags]


def contract_decisions(
    log: ReleaseLog, *, active: Slot | None, deployed: Slot | None, grace_over: bool
) -> tuple[list[ReleaseRecord], list[ReleaseRecord]]:
    """Pending contract steps to run now and to cancel. The active release's runs once no slot is
    in its grace period any more (the release before it can no longer be rolled back to); a
    pending step of a release that neither serves nor waits in preview was rolled back within
    grace, and is cancelled."""
    current = log.of_slot(active) if active is not None else None
    preview = log.of_slot(deployed) if deployed is not None else None
    keep = {r.number for r in (current, preview) if r is not None}
    pending = [r for r in log.releases if r.contract_state == "pending"]
    cancel = [r for r in pending if r.number not in keep]
    run = [r for r in pending if current is not None and r.number == current.number and r.tag and grace_over]
    return run, cancel


def contract_changes(host: str, due: list[ReleaseRecord], cancelled: list[ReleaseRecord]) -> tuple[Change, ...]:
    """The plan lines of a cleanup's contract work: steps it runs now, and steps it cancels."""
    return (
        *(
            Change(
                host=host,
                what="contract",
                target=f"release {r.number}",
                old="pending",
                new="cancelled",
                why="rolled back within its grace period",
            )
            for r in cancelled
        ),
        *(
            Change(
                host=host,
                what="contract",
                target=f"release {r.number}",
                old="pending",
                new="done",
                why=f"runs {r.contract!r} once: no release is left to roll back to",
            )
            for r in due
        ),
    )


def record_meta(
    *,
    project: str,
    env: Environment,
    image: str,
    slot: Slot,
    env_version: int | None,
    actor: str,
    time: datetime,
    health: Literal["passed", "failed"],
    container_port: int,
    health_path: str,
    migrate: str | None = None,
    contract: str | None = None,
) -> str:
    """What the controller hands the server's release store (number, image ID and label are added there)."""
    return json.dumps(
        {
            "project": names.project_name(project),
            "env": env.value,
            "image": image,
            "slot": slot.value,
            "env_version": env_version,
            "actor": actor,
            "time": time.isoformat(),
            "health": health,
            "container_port": container_port,
            "health_path": health_path,
            "migrate": migrate,
            "contract": contract,
            "contract_state": "pending" if contract and health == "passed" else None,
        },
        sort_keys=True,
    )


def release_step(value: object, what: str) -> str | None:
    """A migrate or contract command: one shell line, run with ``/bin/sh -c`` in the release's image."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or any(c in value for c in "\0\n\r") or len(value) > 4096 or value.startswith("-"):
        raise CodebError(f"invalid {what} command: one line of at most 4096 characters, not starting with '-'")
    return value
