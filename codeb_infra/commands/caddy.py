"""caddy and upstream-pointer command lines."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted


def validate(caddy_bin: str, config: str) -> StringCommand:
    return command(quoted(caddy_bin), "validate", "--adapter", "caddyfile", "--config", quoted(config))


def reload(caddy_bin: str, caddyfile: str) -> StringCommand:
    return command(quoted(caddy_bin), "reload", "--adapter", "caddyfile", "--config", quoted(caddyfile))


def replace_site(*, caddy_bin: str, staged: str, target: str, caddyfile: str) -> StringCommand:
    """Validate the staged site, move it into place, reload; put the old file back if reload fails."""
    return command(
        validate(caddy_bin, staged),
        "&&",
        "{",
        "if",
        "[",
        "-f",
        quoted(target),
        "]",
        ";",
        "then",
        "cp",
        "-p",
        quoted(target),
        quoted(f"{target}.prev"),
        ";",
        "fi",
        ";",
        "}",
        "&&",
        "mv",
        "-f",
        quoted(staged),
        quoted(target),
        "&&",
        "{",
        reload(caddy_bin, caddyfile),
        "||",
        "{",
        "status=$?",
        ";",
        "if",
        "[",
        "-f",
        quoted(f"{target}.prev"),
        "]",
        ";",
        "then",
        "mv",
        "-f",
        quoted(f"{target}.prev"),
        quoted(target),
        ";",
        "else",
        "rm",
        "-f",
        quoted(target),
        ";",
        "fi",
        ";",
        "exit",
        "$status",
        ";",
        "}",
        ";",
        "}",
        "&&",
        "rm",
        "-f",
        quoted(f"{target}.prev"),
    )


def write_pointer(path: str, address: str) -> StringCommand:
    """Atomically point an upstream file at an address: Caddy reads it per request, no reload."""
    tmp = f"{path}.tmp"
    return command(
        "mkdir",
        "-p",
        "--",
        quoted(path.rsplit("/", 1)[0]),
        "&&",
        "printf",
        "'%s\\n'",
        quoted(address),
        ">",
        quoted(tmp),
        "&&",
        "mv",
        "-f",
        quoted(tmp),
        quoted(path),
    )
