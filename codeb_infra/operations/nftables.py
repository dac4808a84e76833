"""codeb's nftables table (`inet codeb`): default-deny inbound rules, loaded at boot by
nftables.service, changed only as a confirmed change (undone by the server itself unless a new
SSH connection gets in). podman's own tables are never touched."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import FunctionCommand, operation
from pyinfra.operations import files, systemd

from codeb_infra.commands import confirm as confirm_commands
from codeb_infra.commands import nftables as nft_commands
from codeb_infra.config.network import (
    FIREWALL_DIR,
    FIREWALL_RULES,
    FIREWALL_TABLE,
    NFTABLES_CONF,
    nftables_conf,
)
from codeb_infra.controller.confirm import confirm_change
from codeb_infra.facts.files import TextFile
from codeb_infra.facts.network import FirewallState
from codeb_infra.operations import Commands

RECORDED = f"{FIREWALL_DIR}/loaded.json"
STAGED = f"{FIREWALL_RULES}.new"
SERVICE_DROP_IN = "/etc/systemd/system/nftables.service.d/codeb.conf"
# Debian's unit flushes the whole ruleset on stop, podman's rules with it; codeb's table alone goes.
SERVICE_OVERRIDE = (
    "# Written by codeb-infra: stopping nftables removes codeb's table only (podman keeps its own rules).\n"
    "[Service]\n"
    "ExecStop=\n"
    f"ExecStop=/usr/sbin/nft delete table {' '.join(FIREWALL_TABLE)}\n"
)


def _restore_line() -> str:
    family, table = FIREWALL_TABLE
    return f"if [ -f {FIREWALL_RULES} ]; then nft -f {FIREWALL_RULES}; else nft delete table {family} {table}; fi"


@operation()
def firewall(*, rules: str, confirm_seconds: int = 60) -> Commands:
    """
    Load codeb's nftables table from ``rules`` and keep it across reboots. Changed when the file
    differs or the live table drifted from what was loaded; the change is undone by the server
    after ``confirm_seconds`` unless a new SSH connection confirms it.

    + rules: the table's text (``config.network.firewall_rules``)
    + confirm_seconds: how long a change waits for a new SSH connection before it is undone

    **Example:**

    .. code:: python

        nftables.firewall(rules=firewall_rules(["storage"], settings, peers))
    """
    family, table = FIREWALL_TABLE
    current = host.get_fact(TextFile, path=FIREWALL_RULES)
    conf = host.get_fact(TextFile, path=NFTABLES_CONF)
    state = host.get_fact(FirewallState, family=family, table=table, recorded=RECORDED)
    override_current = host.get_fact(TextFile, path=SERVICE_DROP_IN) == SERVICE_OVERRIDE.rstrip("\n")
    if not override_current:
        yield from files.put._inner(
            src=StringIO(SERVICE_OVERRIDE), dest=SERVICE_DROP_IN, mode="644", create_remote_dir=True
        )
    yield from systemd.service._inner(service="nftables.service", enabled=True, daemon_reload=not override_current)
    if (
        current == rules.rstrip("\n")
        and conf == nftables_conf().rstrip("\n")
        and state.live is not None
        and not state.drifted
    ):
        host.noop(f"table {family} {table} loaded as written ({state.rule_count} rules)")
        return
    yield from files.directory._inner(path=FIREWALL_DIR, user="root", group="root", mode="700")
    yield from files.put._inner(src=StringIO(rules), dest=STAGED, user="root", group="root", mode="600")
    yield nft_commands.check(STAGED)
    yield confirm_commands.arm(
        paths=(FIREWALL_RULES, NFTABLES_CONF, RECORDED), restore=_restore_line(), seconds=confirm_seconds
    )
    yield nft_commands.install(STAGED, FIREWALL_RULES)
    yield from files.put._inner(
        src=StringIO(nftables_conf()), dest=NFTABLES_CONF, user="root", group="root", mode="644"
    )
    yield nft_commands.load(FIREWALL_RULES)
    yield nft_commands.record_table(family, table, RECORDED)
    yield FunctionCommand(confirm_change, ("firewall change", confirm_seconds), {})
