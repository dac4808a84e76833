"""Scheduled jobs as systemd timers: a oneshot service and its timer, enabled and started."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import files, systemd

from codeb_infra.domain.data import Schedule
from codeb_infra.facts.files import TextFile
from codeb_infra.operations import Commands
from codeb_infra.templates import render

UNIT_DIR = "/etc/systemd/system"


@operation()
def job(*, schedule: Schedule, command: str, after: str = "", jitter: str = "60") -> Commands:
    """
    ``{name}.service`` runs ``command`` as ``schedule.user``; ``{name}.timer`` starts it at
    ``schedule.on_calendar`` (missed runs are caught up after a boot: ``Persistent=true``).

    + schedule: name, description, user and calendar of the job
    + command: the service's ExecStart line
    + after: units the job starts after, e.g. ``postgresql.service``
    + jitter: RandomizedDelaySec of the timer

    **Example:**

    .. code:: python

        timers.job(schedule=STORAGE_SCHEDULES[0], command="/usr/local/lib/codeb/codeb-storage base-backup")
    """
    values = {
        "name": schedule.name,
        "description": schedule.description,
        "user": schedule.user,
        "command": command,
        "after": after,
        "on_calendar": schedule.on_calendar,
        "jitter": jitter,
    }
    changed = False
    for suffix, template in (("service", "job.service.j2"), ("timer", "job.timer.j2")):
        path = f"{UNIT_DIR}/{schedule.name}.{suffix}"
        content = render(template, **values)
        if host.get_fact(TextFile, path=path) != content.rstrip("\n"):
            changed = True
            yield from files.put._inner(src=StringIO(content), dest=path, mode="644")
    yield from systemd.service._inner(
        service=f"{schedule.name}.timer",
        running=True,
        enabled=True,
        daemon_reload=changed,
        restarted=changed,
    )
