"""systemctl command lines."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted


def daemon_reload() -> StringCommand:
    return command("systemctl", "daemon-reload")


def restart(unit: str) -> StringCommand:
    return command("systemctl", "restart", quoted(unit))


def reset_failed(unit: str) -> StringCommand:
    """Forget a unit's failures, so a start is not refused for a crash loop that hit the start limit."""
    return command("systemctl", "reset-failed", "--", quoted(unit))


def stop(unit: str) -> StringCommand:
    return command("systemctl", "stop", "--", quoted(unit))


def quadlet_available() -> StringCommand:
    """`quadlet` when systemd runs and podman ships its Quadlet generator (podman >= 4.4)."""
    return command(
        "if",
        "[",
        "-d",
        "/run/systemd/system",
        "]",
        "&&",
        "{",
        "[",
        "-x",
        "/usr/libexec/podman/quadlet",
        "]",
        "||",
        "[",
        "-x",
        "/usr/lib/podman/quadlet",
        "]",
        ";",
        "}",
        ";",
        "then",
        "echo",
        "quadlet",
        ";",
        "else",
        "echo",
        "podman",
        ";",
        "fi",
    )
