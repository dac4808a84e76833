"""Secrets made on the server itself. Values go from /dev/urandom straight into root-only files;
no command line here holds one, so none reaches the controller, a log or pyinfra's output."""

from __future__ import annotations

import posixpath

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted
from codeb_infra.config.roles import env_key

ALPHABET = "A-Za-z0-9"
ENV_MISSING = "__codeb_missing__"


def _random(length: int) -> StringCommand:
    """`$(…)` that expands to `length` random letters and digits, inside the remote shell."""
    count = int(length)
    if not 16 <= count <= 256:
        raise ValueError(f"secret length {length} out of range 16..256")
    return command('"$(', "tr", "-dc", quoted(ALPHABET), "</dev/urandom", "|", "head", "-c", str(count), ')"')


def generate(path: str, length: int) -> StringCommand:
    """Write a random secret to `path` (0600) unless it already holds one: never overwritten."""
    staged = f"{path}.new"
    return command(
        "[",
        "-s",
        quoted(path),
        "]",
        "||",
        "(",
        "umask",
        "077",
        "&&",
        "printf",
        quoted("%s"),
        _random(length),
        ">",
        quoted(staged),
        "&&",
        "[",
        "-s",
        quoted(staged),
        "]",
        "&&",
        "mv",
        "-f",
        quoted(staged),
        quoted(path),
        ")",
    )


def restrict(path: str) -> StringCommand:
    """Root alone may read or write the file."""
    return command("chown", "root:root", quoted(path), "&&", "chmod", "600", quoted(path))


def secrets_dir(path: str) -> StringCommand:
    return command("install", "-d", "-o", "root", "-g", "root", "-m", "700", quoted(posixpath.dirname(path)))


def env_keys(path: str) -> StringCommand:
    """The variable names an env file sets (never their values), or a marker when it is absent."""
    return command(
        "if",
        "[",
        "-f",
        quoted(path),
        "]",
        ";",
        "then",
        "sed",
        "-n",
        quoted(r"s/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p"),
        quoted(path),
        ";",
        "else",
        "echo",
        quoted(ENV_MISSING),
        ";",
        "fi",
    )


def add_env_value(path: str, key: str, length: int) -> StringCommand:
    """Append `KEY=<random>` to an env file (0600) unless the file already sets KEY."""
    name = env_key(key)
    return command(
        "(",
        "umask",
        "077",
        "&&",
        "touch",
        quoted(path),
        "&&",
        "{",
        "grep",
        "-q",
        quoted(f"^{name}="),
        quoted(path),
        "||",
        "printf",
        quoted(f"{name}=%s\\n"),
        _random(length),
        ">>",
        quoted(path),
        ";",
        "}",
        ")",
    )
