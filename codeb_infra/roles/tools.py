"""The packaged server-side tools (codeb-storage, codeb-backup) as a role installs them: the entry
script at /usr/local/lib/codeb/TOOL and the modules it imports in the package beside it."""

from __future__ import annotations

from pyinfra.operations import files

from codeb_infra.domain.data import TOOLS_DIR
from codeb_infra.remote import SERVER_PACKAGE, tool_files


def remote_tool(tool: str, *, purpose: str) -> None:
    """Install ``tool`` and its modules, root-owned; a second run uploads nothing."""
    files.directory(
        name=f"Directory {TOOLS_DIR}/{SERVER_PACKAGE}",
        path=f"{TOOLS_DIR}/{SERVER_PACKAGE}",
        user="root",
        group="root",
        mode="755",
    )
    entry, *modules = tool_files(tool)
    source, dest = entry
    files.put(
        name=f"{tool} ({purpose})", src=str(source), dest=f"{TOOLS_DIR}/{dest}", user="root", group="root", mode="755"
    )
    for source, dest in modules:
        files.put(
            name=f"{tool} module {dest}",
            src=str(source),
            dest=f"{TOOLS_DIR}/{dest}",
            user="root",
            group="root",
            mode="644",
        )
