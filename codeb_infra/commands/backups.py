"""Command lines of the backup tools on the storage and backup servers, and of their jobs."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import QuoteString, StringCommand

from codeb_infra.commands import command, quoted, safe
from codeb_infra.config.roles import BACKUP_USER
from codeb_infra.domain.data import BACKUP_TOOL, STORAGE_TOOL


def storage_status() -> StringCommand:
    return command(STORAGE_TOOL, "status")


def _backup_tool(root: str, *arguments: str | QuoteString | StringCommand) -> StringCommand:
    return command("runuser", "-u", BACKUP_USER, "--", BACKUP_TOOL, "--root", quoted(root), *arguments)


def store_status(root: str) -> StringCommand:
    return _backup_tool(root, "status")


def drill(root: str, pg_bin: str, scratch: str) -> StringCommand:
    return _backup_tool(root, "drill", "--pg-bin", quoted(pg_bin), "--scratch", quoted(scratch))


def restore_pitr(root: str, pg_bin: str, scratch: str, database: str, target: str) -> StringCommand:
    return _backup_tool(
        root,
        "restore-pitr",
        quoted(database),
        "--to",
        quoted(target),
        "--json",
        "--pg-bin",
        quoted(pg_bin),
        "--scratch",
        quoted(scratch),
    )


def drop_pitr(root: str, pg_bin: str, scratch: str, name: str) -> StringCommand:
    return _backup_tool(
        root, "restore-pitr", "--drop", quoted(name), "--pg-bin", quoted(pg_bin), "--scratch", quoted(scratch)
    )


def run_job(unit: str) -> StringCommand:
    """Start a oneshot job now and wait for it; fails when the job fails."""
    return command("systemctl", "start", quoted(unit))


# systemd ExecStart lines and PostgreSQL's archive_command: no shell reads these, so their parts
# are checked (`safe`) and joined, not quoted.


def archive_command() -> str:
    """PostgreSQL's archive_command: ship segment %p named %f to the backup server."""
    return f"{STORAGE_TOOL} archive-wal %p %f"


def storage_job(arguments: Sequence[str]) -> str:
    return " ".join([STORAGE_TOOL, *(safe(a) for a in arguments)])


def backup_job(action: str, *, root: str, pg_bin: str, scratch: str, keep_days: int, rdb_hours: int) -> str:
    options = {
        "prune": ["--keep-days", str(int(keep_days)), "--rdb-hours", str(int(rdb_hours))],
        "drill": ["--pg-bin", safe(pg_bin), "--scratch", safe(scratch)],
    }
    return " ".join([BACKUP_TOOL, "--root", safe(root), safe(action), *options.get(action, [])])
