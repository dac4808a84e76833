"""What each of the four servers runs, as one pyinfra deploy per role."""

from __future__ import annotations

from importlib import import_module

from pyinfra import host

ROLES = ("app", "streaming", "storage", "backup")


def bootstrap_current_host() -> None:
    """Run the bootstrap of every role the current host belongs to (`@local` counts as app)."""
    roles = [role for role in ROLES if role in host.groups]
    if not roles and host.name.startswith("@local"):
        roles = ["app"]
    for role in roles:
        getattr(import_module(f"codeb_infra.roles.{role}"), role)()
