"""One version for the platform: each server's /opt/codeb/version.json (written by bootstrap) and
what `codeb version` reads back from every server."""

from __future__ import annotations

import hashlib
import posixpath
from io import StringIO
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pyinfra import host
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files

from codeb_infra import __version__
from codeb_infra.commands.health import HEALTH_TOOL
from codeb_infra.config.app import DnsSettings, HostSettings
from codeb_infra.config.roles import REPORT_TOOL
from codeb_infra.domain import versions
from codeb_infra.domain.data import BACKUP_TOOL, STORAGE_TOOL, TOOLS_DIR
from codeb_infra.domain.versions import ServerVersion
from codeb_infra.facts.files import TextFile
from codeb_infra.remote import tool_files

REMOTE = Path(__file__).resolve().parent.parent / "remote"
VERSION_FILE = "/opt/codeb/version.json"


def role_tools(roles: set[str], data: Any) -> dict[str, Path]:
    """Server-side tools a server of these roles gets: installed path -> source here."""
    settings = HostSettings.from_data(data)
    bin_dir = posixpath.join(settings.codeb_dir, "bin")
    tools: dict[str, Path] = {HEALTH_TOOL: REMOTE / "codeb_health.py"}  # every server: `codeb health` reads through it
    if "app" in roles:
        tools.update(
            {
                settings.state_tool: REMOTE / "codeb_state.py",
                DnsSettings.from_data(data).api.tool: REMOTE / "codeb_pdns.py",
                posixpath.join(bin_dir, "codeb-env"): REMOTE / "codeb_env.py",
                posixpath.join(bin_dir, "codeb-releases"): REMOTE / "codeb_releases.py",
                posixpath.join(bin_dir, "codeb-watch"): REMOTE / "codeb_watch.py",
            }
        )
    if roles & {"storage", "backup"}:  # the API's report key runs it (roles/reports.py)
        tools[REPORT_TOOL] = REMOTE / "codeb_report.py"
    for role, tool in (("storage", STORAGE_TOOL), ("backup", BACKUP_TOOL)):
        if role in roles:  # the entry script and the modules installed beside it
            tools.update(
                {posixpath.join(TOOLS_DIR, dest): source for source, dest in tool_files(posixpath.basename(tool))}
            )
    return tools


def digests(tools: dict[str, Path]) -> dict[str, str]:
    return {path: hashlib.sha256(source.read_bytes()).hexdigest() for path, source in tools.items()}


def version_file(roles: set[str]) -> None:
    """At the end of a bootstrap: the tools of this server's roles (the env and release stores'
    too) and the version record naming them."""
    tools = role_tools(roles, host.data)
    for path, source in tools.items():
        if source.name in ("codeb_env.py", "codeb_releases.py", "codeb_watch.py"):
            files.put(
                name=f"Install {posixpath.basename(path)}",
                src=str(source),
                dest=path,
                mode="755",
                create_remote_dir=True,
            )
    files.put(
        name=f"codeb-infra {__version__} in {VERSION_FILE}",
        src=StringIO(versions.record(__version__, sorted(roles), digests(tools))),
        dest=VERSION_FILE,
        user="root",
        group="root",
        mode="644",
        create_remote_dir=True,
    )


def server_version(roles: set[str]) -> dict[str, Any]:
    """What this server says it runs, and why that differs from this controller (if it does)."""
    text = host.get_fact(TextFile, path=VERSION_FILE)
    try:
        recorded = ServerVersion.model_validate_json(text) if text else None
    except ValidationError:
        recorded = None
    wanted = digests(role_tools(roles, host.data))
    installed = {path: host.get_fact(Sha256File, path=path) for path in wanted}
    return {
        "server": host.name,
        "roles": sorted(roles),
        "version": recorded.version if recorded else None,
        "problems": versions.mismatches(__version__, wanted, recorded, installed),
    }
