"""What each of the four servers runs, as one pyinfra deploy per role."""

from __future__ import annotations

from pyinfra import host

from codeb_infra.flows.reports import REPORTS
from codeb_infra.flows.version import version_file
from codeb_infra.roles.app import app
from codeb_infra.roles.backup import backup, backup_access
from codeb_infra.roles.monitoring import monitoring
from codeb_infra.roles.network import network, network_keys
from codeb_infra.roles.reports import report_access, report_tool
from codeb_infra.roles.storage import storage
from codeb_infra.roles.streaming import streaming

ROLES = ("app", "streaming", "storage", "backup")


def host_roles() -> set[str]:
    """The roles of the current host; `@local` stands in for the app server."""
    roles = {role for role in ROLES if role in host.groups}
    return roles or ({"app"} if host.name.startswith("@local") else set())


def bootstrap_roles() -> None:
    roles = host_roles()
    network()
    if "app" in roles:
        app()
    if "streaming" in roles:
        streaming()
    if "storage" in roles:
        storage()
    if "backup" in roles:
        backup()
    if roles & set(REPORTS):
        report_tool(roles)
    monitoring()
    if roles:
        version_file(roles)


def server_access() -> None:
    """What spans servers once every role is in place: backup access, and the API's report key."""
    backup_access()
    report_access()


def bootstrap_current_host() -> None:
    """The WireGuard keys, every role of this host, then backup access and the API's report key,
    which need keys that the roles of *other* hosts make: in a deploy file pyinfra orders
    operations by call site, so these calls run as phases across all hosts. Through pyinfra's API
    (the `codeb` CLI) run them as separate runs: see BOOTSTRAP_PHASES."""
    network_keys()
    bootstrap_roles()
    server_access()


BOOTSTRAP_PHASES = (network_keys, bootstrap_roles, server_access)
