"""Status: one project/env's slots as recorded, checked against what runs."""

from __future__ import annotations

from typing import Any


from codeb_infra.domain import names, slots
from codeb_infra.domain.names import Slot
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.flows.dns import (
    external_records,
)
from codeb_infra.flows.releases import slot_releases
from codeb_infra.flows.common import healthy_container, pointers, read_context, slot_containers


def status(request: SlotRequest) -> dict[str, Any]:
    """The slot state of one project/env as recorded, checked against podman and the pointers."""
    settings, projects, pair, _ = read_context(request)
    entry = projects.require(request.project, request.env)
    containers = slot_containers(request)
    serving = pointers(settings, request)
    report: dict[str, Any] = {
        "project": request.project, "env": request.env.value,
        "active_slot": pair.active.value if pair.active else None,
        "domain": entry.domain,
        "aliases": list(entry.aliases),
        "dns_to_create": external_records(entry.domains),
        "preview_domain": names.preview_domain(request.project, request.env, settings.base_domain),
        "slots": {}, "grace_until": None,
        "serving": serving,
    }
    numbers = slot_releases(request.project, request.env)
    for s in Slot:
        record = pair.record(s)
        container = containers.get(names.container_name(request.project, request.env, s))
        report["slots"][s.value] = {
            "state": record.state.value,
            "image": record.release.image if record.release else None,
            "port": entry.ports[s],
            "container": None if container is None else ("running" if container.running else "stopped"),
            "container_id": None if container is None else container.id,
            "matches_record": record.release is None or healthy_container(pair, s, containers, settings),
            "deployed_at": record.deployed_at.isoformat() if record.deployed_at else None,
            "grace_until": record.grace_until.isoformat() if record.grace_until else None,
            "release": numbers[s.value] if record.release else None,
        }
        if record.grace_until and record.state is slots.SlotState.GRACE:
            report["grace_until"] = record.grace_until.isoformat()
    return report
