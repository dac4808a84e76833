"""nftables command lines: check a rules file, load it, and read codeb's table back as JSON.
Only codeb's own table is ever named; never `flush ruleset` (podman keeps rules of its own)."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted

MISSING = "__codeb_missing__"


def check(path: str) -> StringCommand:
    """Parse and validate a rules file without loading it."""
    return command("nft", "-c", "-f", quoted(path))


def load(path: str) -> StringCommand:
    return command("nft", "-f", quoted(path))


def table_json(family: str, table: str) -> StringCommand:
    """The live table as `nft -j` JSON, or the MISSING marker when it does not exist."""
    return command("nft", "-j", "list", "table", quoted(family), quoted(table), "2>/dev/null", "||", "echo", MISSING)


def record_table(family: str, table: str, path: str) -> StringCommand:
    """Keep the table as just loaded, to tell drift (a rule added or removed by hand) later."""
    return command("nft", "-j", "list", "table", quoted(family), quoted(table), ">", quoted(path))


def firewall_state(family: str, table: str, recorded: str) -> StringCommand:
    """Two JSON lines: the live table (or MISSING) and the one recorded when it was loaded (or MISSING)."""
    return command(
        table_json(family, table),
        ";",
        "echo",
        ";",
        "cat",
        quoted(recorded),
        "2>/dev/null",
        "||",
        "echo",
        MISSING,
    )


def install(staged: str, path: str) -> StringCommand:
    """Put a checked rules file in place (a rename: never half written)."""
    return command("mv", "-f", quoted(staged), quoted(path))
