"""Status: one project/env's slots as recorded, checked against what runs."""

from __future__ import annotations

import json
from typing import Any

from pyinfra import host

from codeb_infra.config.app import HostSettings
from codeb_infra.domain import names, slots
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Slot
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.facts.files import TextFile
from codeb_infra.flows.common import read_slots
from codeb_infra.flows.dns import (
    external_records,
)
from codeb_infra.flows.releases import slot_releases


def status(request: SlotRequest) -> dict[str, Any]:
    """The slot state of one project/env as recorded, checked against podman and the pointers."""
    settings = HostSettings.from_data(host.data)
    live, _ = read_slots(settings, request)
    entry, pair, serving = live.entry, live.pair, live.pointers
    if entry is None:
        raise CodebError(f"unknown project {request.project}/{request.env.value}: deploy it first")
    report: dict[str, Any] = {
        "project": request.project,
        "env": request.env.value,
        "active_slot": pair.active.value if pair.active else None,
        "domain": entry.domain,
        "aliases": list(entry.aliases),
        "dns_to_create": external_records(entry.domains),
        "preview_domain": names.preview_domain(request.project, request.env, settings.base_domain),
        "slots": {},
        "grace_until": None,
        "serving": serving,
        "watch": _watch(host.get_fact(TextFile, path=settings.watch_record(request.project, request.env))),
    }
    numbers = slot_releases(request.project, request.env)
    for s in Slot:
        record = pair.record(s)
        container = live.container(s)
        report["slots"][s.value] = {
            "state": record.state.value,
            "image": record.release.image if record.release else None,
            "port": entry.ports[s],
            "container": None if container is None else ("running" if container.running else "stopped"),
            "container_id": None if container is None else container.id,
            "matches_record": record.release is None or live.healthy(s),
            "deployed_at": record.deployed_at.isoformat() if record.deployed_at else None,
            "grace_until": record.grace_until.isoformat() if record.grace_until else None,
            "release": numbers[s.value] if record.release else None,
        }
        if record.grace_until and record.state is slots.SlotState.GRACE:
            report["grace_until"] = record.grace_until.isoformat()
    return report


def _watch(text: str | None) -> dict[str, Any] | None:
    """The watch of the last promote as the app server recorded it (why, after a rollback)."""
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return {"state": "unreadable", "reason": "the watch record is not JSON"}
    return found if isinstance(found, dict) else None
