"""What the API may read on the streaming, storage and backup servers, and how it is limited: codeb-report
with its whitelist of read-only reports on each report server, and the API's report key, made on
the app server and authorized on the report servers for codeb-report alone, from the app server's
internal address alone (so the app server holds no shell on them).

`report_tool()` is part of the streaming, storage and backup roles; `report_access()` spans servers (the key
made on app, then authorized on streaming, storage and backup) and runs on every host after the roles, as
`backup_access()` does.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import StringCommand, deploy
from pyinfra.api.host import Host
from pyinfra.operations import files

from codeb_infra.commands import backups as backup_commands
from codeb_infra.commands import postgres as postgres_commands
from codeb_infra.config.roles import REPORT_CONFIG, REPORT_TOOL, BackupSettings
from codeb_infra.flows import reports
from codeb_infra.operations import reports as report_ops
from codeb_infra.roles.network import _roles, internal_address

REPORT_SOURCE = Path(__file__).resolve().parent.parent / "remote" / "codeb_report.py"


def report_lines(name: str, roles: set[str], data: Any) -> dict[str, str]:
    """Each report a server of these roles answers: the exact command line its fact runs on the
    CLI's path (`flows.reports.REPORTS` names them)."""
    from codeb_infra.flows import health  # which imports the roles' host_roles

    commands: dict[str, StringCommand] = {"health": health.read_command(health.plan(name, roles, data))}
    if "storage" in roles:
        commands["storage"] = backup_commands.storage_status()
        commands["databases"] = postgres_commands.databases()
    if "backup" in roles:
        commands["backup"] = backup_commands.store_status(BackupSettings.from_data(data).backup_root)
    return {report: commands[report].get_raw_value() for report in reports.server_reports(roles)}


def report_config(name: str, roles: set[str], data: Any) -> str:
    return json.dumps({"reports": report_lines(name, roles, data)}, indent=2, sort_keys=True) + "\n"


def report_tool(roles: set[str]) -> None:
    """codeb-report and its whitelist (root's own) on a streaming, storage or backup server."""
    files.put(
        name="codeb-report (the API's read-only reports)",
        src=str(REPORT_SOURCE),
        dest=REPORT_TOOL,
        user="root",
        group="root",
        mode="755",
        create_remote_dir=True,
    )
    files.put(
        name=f"codeb-report's whitelist {REPORT_CONFIG}",
        src=StringIO(report_config(host.name, roles, host.data)),
        dest=REPORT_CONFIG,
        user="root",
        group="root",
        mode="600",
        create_remote_dir=True,
    )


def _report_hosts() -> list[Host]:
    inventory = host.state.inventory
    found: dict[str, Host] = {}
    for role in reports.REPORTS:
        for server in inventory.get_group(role, default=[]):
            found.setdefault(server.name, server)
    return list(found.values())


def report_servers() -> list[dict[str, Any]]:
    """The API inventory's `codeb_report_servers`: each report server with the address the API
    reaches it at and the settings its checks are judged by."""
    return [
        reports.server_entry(server.name, _roles(server), internal_address(server) or "", server.data)
        for server in _report_hosts()
        if internal_address(server)
    ]


@deploy("API reports")
def report_access() -> None:
    """The API's report key on app, the report servers' host keys known to it, the key authorized
    on streaming, storage and backup; call on every host."""
    apps = host.state.inventory.get_group("app", default=[])
    app = apps[0] if apps else None
    servers = [(s.name, internal_address(s)) for s in _report_hosts()]
    wanted = [(name, address) for name, address in servers if address]
    report_ops.api_key(name="API report key", app=app.name if app and wanted else "")
    report_ops.known_servers(name="Report servers' host keys", app=app.name if app and wanted else "", servers=wanted)
    report_ops.authorized_api(
        name="API report key authorized for codeb-report",
        app=app.name if app else "",
        address=internal_address(app) if app else None,
        servers=[name for name, _ in wanted],
    )
