"""Programs shipped to the servers; standard library only.

codeb-state and codeb-pdns are one file each. codeb-storage and codeb-backup are modules of this
package, so that what both must agree on (codeb_common) exists once: on a server their modules
are installed as the package ``codeb_remote`` beside the tool's entry script (``bin/TOOL``), which
puts its own directory on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

SOURCE = Path(__file__).resolve().parent
SERVER_PACKAGE = "codeb_remote"
_MODULES = {
    "codeb-storage": ("codeb_common.py", "codeb_storage.py"),
    "codeb-backup": (
        "codeb_common.py",
        "codeb_backup.py",
        "codeb_backup_archive.py",
        "codeb_backup_store.py",
        "codeb_backup_scratch.py",
        "codeb_backup_restore.py",
    ),
}
PACKAGED_TOOLS = tuple(_MODULES)


def tool_files(tool: str) -> tuple[tuple[Path, str], ...]:
    """What to install for ``tool``: (source file, path relative to the tools directory), the entry
    script first."""
    modules = ("__init__.py", *_MODULES[tool])
    return ((SOURCE / "bin" / tool, tool), *((SOURCE / name, f"{SERVER_PACKAGE}/{name}") for name in modules))
