"""The system accounts the roles run their services as: a group and a user of the same name, with
a home of its own."""

from __future__ import annotations

from pyinfra.operations import server


def system_account(user: str, *, home: str, shell: str = "/usr/sbin/nologin") -> None:
    """Group and system user ``user`` (operations named "{user} group", "{user} user")."""
    server.group(name=f"{user} group", group=user, system=True)
    server.user(name=f"{user} user", user=user, group=user, system=True, shell=shell, home=home, create_home=True)
