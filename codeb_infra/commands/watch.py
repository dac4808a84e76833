"""The command line that stops the app server's watch of a promoted release (a transient systemd
unit, so it outlives the controller's SSH connection; `codeb-state switch` starts it)."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted


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
