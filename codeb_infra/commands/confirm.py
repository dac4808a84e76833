"""Command lines of a confirmed change (firewall, mesh): before the change, the files it touches
are saved and a systemd timer is armed that puts them back and re-applies them; a new SSH
connection that gets in afterwards disarms the timer. A change that cuts SSH off undoes itself."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted, safe

STATE_DIR = "/var/lib/codeb/network"
SNAPSHOT = f"{STATE_DIR}/previous.tar"
REVERTED = f"{STATE_DIR}/reverted"
UNIT = "codeb-network-revert"
CONFIRMED = "confirmed"
EXPIRED = "expired"
PENDING = "codeb: a network change is still waiting to be confirmed or undone; try again in a minute"


def arm(*, paths: Sequence[str], restore: str, seconds: int) -> StringCommand:
    """Save `paths` (those that exist) and arm a timer that, after `seconds`, removes the paths,
    extracts the saved copies and runs `restore` (a shell line re-applying them; it may use
    neither `$` nor `%`, which systemd would expand)."""
    if "$" in restore or "%" in restore:
        raise ValueError("the restore line may hold neither '$' nor '%'")
    files = [quoted(p) for p in paths]
    undo = " ".join(
        [
            "rm",
            "-f",
            "--",
            *(shlex.quote(safe(p)) for p in paths),
            ";",
            "tar",
            "-xPpf",
            SNAPSHOT,
            ";",
            restore,
            ";",
            "touch",
            REVERTED,
        ]
    )
    return command(
        "if",
        "systemctl",
        "is-active",
        "--quiet",
        f"{UNIT}.timer",
        ";",
        "then",
        "echo",
        quoted(PENDING),
        ">&2",
        ";",
        "exit",
        "1",
        ";",
        "fi",
        "&&",
        "install",
        "-d",
        "-m",
        "700",
        STATE_DIR,
        "&&",
        "rm",
        "-f",
        REVERTED,
        "&&",
        "tar",
        "-cPpf",
        SNAPSHOT,
        "--ignore-failed-read",
        *files,
        "2>/dev/null",
        "&&",
        "{",
        "systemctl",
        "reset-failed",
        f"{UNIT}.service",
        f"{UNIT}.timer",
        "2>/dev/null",
        "||",
        "true",
        ";",
        "}",
        "&&",
        "systemd-run",
        "--quiet",
        f"--unit={UNIT}",
        f"--on-active={int(seconds)}s",
        "--timer-property=AccuracySec=1s",
        "/bin/sh",
        "-c",
        quoted(undo),
    )


def disarm() -> StringCommand:
    """`confirmed` when the timer was still waiting (now stopped), `expired` when it already ran."""
    return command(
        "if",
        "systemctl",
        "is-active",
        "--quiet",
        f"{UNIT}.timer",
        ";",
        "then",
        "systemctl",
        "stop",
        f"{UNIT}.timer",
        "&&",
        "rm",
        "-f",
        SNAPSHOT,
        "&&",
        "echo",
        CONFIRMED,
        ";",
        "else",
        "echo",
        EXPIRED,
        ";",
        "fi",
    )


def reverted() -> StringCommand:
    """`yes` once the timer has put the previous state back."""
    return command("if", "[", "-e", REVERTED, "]", ";", "then", "echo", "yes", ";", "else", "echo", "no", ";", "fi")
