"""Command lines that start and stop the app server's watch of a promoted release (a transient
systemd unit, so it outlives the controller's SSH connection)."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted

MISSING = "codeb-watch is not installed on this server (codeb bootstrap installs it); the release is not watched"


def stop(unit: str) -> StringCommand:
    """End the watch if one runs (its SIGTERM handler records that it was ended); none is no error."""
    service = quoted(f"{unit}.service")
    return command(
        "systemctl",
        "stop",
        service,
        "2>/dev/null",
        ";",
        "systemctl",
        "reset-failed",
        service,
        "2>/dev/null",
        ";",
        "true",
    )


def start(unit: str, *, tool: str, spec: str) -> StringCommand:
    """Replace any watch of the same project/env with one that runs ``tool run --spec SPEC``."""
    return command(
        stop(unit),
        ";",
        "if",
        "[",
        "-f",
        quoted(tool),
        "]",
        ";",
        "then",
        "systemd-run",
        "--quiet",
        "--collect",
        "--unit",
        quoted(unit),
        "--description",
        quoted("codeb watch of a promoted release"),
        "python3",
        quoted(tool),
        "run",
        "--spec",
        quoted(spec),
        ";",
        "else",
        "echo",
        quoted(MISSING),
        ">&2",
        ";",
        "fi",
    )
