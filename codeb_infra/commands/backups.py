"""Command lines of the backup tools on the storage and backup servers, and of their jobs."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted
from codeb_infra.domain.data import BACKUP_TOOL, STORAGE_TOOL
from codeb_infra.domain.services import BACKUP_USER


def storage_status() -> StringCommand:
    return command(STORAGE_TOOL, "status")


def _backup_tool(root: str, *arguments: str | StringCommand) -> StringCommand:
    return command("runuser", "-u", BACKUP_USER, "--", BACKUP_TOOL, "--root", quoted(root), *arguments)


def store_status(root: str) -> StringCommand:
    return _backup_tool(root, "status")


def drill(root: str, pg_bin: str, scratch: str) -> StringCommand:
    return _backup_tool(root, "drill", "--pg-bin", quoted(pg_bin), "--scratch", quoted(scratch))


def restore_pitr(root: str, pg_bin: str, scratch: str, database: str, target: str) -> StringCommand:
    return _backup_tool(root, "restore-pitr", quoted(database), "--to", quoted(target), "--json",
                        "--pg-bin", quoted(pg_bin), "--scratch", quoted(scratch))


def drop_pitr(root: str, pg_bin: str, scratch: str, name: str) -> StringCommand:
    return _backup_tool(root, "restore-pitr", "--drop", quoted(name), "--pg-bin", quoted(pg_bin), "--scratch", quoted(scratch))


def run_job(unit: str) -> StringCommand:
    """Start a oneshot job now and wait for it; fails when the job fails."""
    return command("systemctl", "start", quoted(unit))
