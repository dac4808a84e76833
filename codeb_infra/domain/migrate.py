"""What every server migration shares: the target named in the inventory, the preflight checks'
results and the exit rule of `codeb migrate ROLE --to HOST --dry-run`. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.errors import CodebError

MIGRATABLE_ROLES = ("storage", "app")
TARGETS_GROUP = "targets"
TARGET_KEY = "migrate_target"
MIGRATION_DIR = "/opt/codeb/migration"
GRACE_HOURS = 48


def record_path(role: str) -> str:
    """Where the target keeps the step record of moving ROLE to it."""
    return f"{MIGRATION_DIR}/{role}.json"


class Check(BaseModel):
    """One preflight check: what was checked, whether it passed, and what was found."""

    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


def failed(checks: Iterable[Check]) -> list[Check]:
    return [check for check in checks if not check.ok]


def exit_code(checks: Iterable[Check]) -> int:
    """0 when every check passed, 1 (failed on a server) when one did not."""
    return 1 if failed(checks) else 0


def report(checks: Iterable[Check]) -> str:
    items = list(checks)
    bad = failed(items)
    verdict = "preflight passed" if not bad else f"preflight failed: {', '.join(c.name for c in bad)}"
    return "\n".join([*(c.line() for c in items), verdict])


def check_target(role: str, target: str, hosts: Mapping[str, Mapping[str, object]]) -> None:
    """Refuse a target the inventory does not mark for ROLE (host data `migrate_target: ROLE`)."""
    if role not in MIGRATABLE_ROLES:
        raise CodebError(f"cannot migrate {role!r}: choose one of {', '.join(MIGRATABLE_ROLES)}")
    if target not in hosts:
        raise CodebError(f"{target}: not in the inventory (add it to group {TARGETS_GROUP!r})")
    marked = hosts[target].get(TARGET_KEY)
    if marked != role:
        raise CodebError(f"{target}: host data must have {TARGET_KEY}: {role!r} to be the {role} server's target")
