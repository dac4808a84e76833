"""Command lines of the API's installation: its virtualenv from an uploaded wheelhouse (no index),
and the audit tool's server-side calls."""

from __future__ import annotations

import posixpath
import re

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted

_OPTION = re.compile(r"--[a-z][a-z-]*")


def python_release() -> StringCommand:
    return command("python3", "-c", quoted('import sys; print("%d.%d" % sys.version_info[:2])'))


def digest_file(venv: str) -> str:
    return posixpath.join(venv, ".codeb-wheelhouse")


def install_venv(*, venv: str, archive: str, digest: str) -> StringCommand:
    """Unpack the wheelhouse, make the venv if missing, install the pinned dependencies and then
    codeb-infra itself (always reinstalled: its version does not change with every commit) without
    any index, and only then record the digest, so an interrupted install is redone."""
    wheels = f"{archive}.d"
    pip = posixpath.join(venv, "bin", "pip")
    return command(
        "rm",
        "-rf",
        quoted(wheels),
        "&&",
        "mkdir",
        "-p",
        quoted(wheels),
        "&&",
        "tar",
        "-xf",
        quoted(archive),
        "-C",
        quoted(wheels),
        "&&",
        "rm",
        "-f",
        quoted(digest_file(venv)),
        "&&",
        "{",
        "[",
        "-x",
        quoted(posixpath.join(venv, "bin", "python")),
        "]",
        "||",
        "python3",
        "-m",
        "venv",
        quoted(venv),
        ";",
        "}",
        "&&",
        quoted(pip),
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-index",
        "--find-links",
        quoted(wheels),
        "-r",
        quoted(posixpath.join(wheels, "requirements.txt")),
        "&&",
        quoted(pip),
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-index",
        "--no-deps",
        "--force-reinstall",
        "--find-links",
        quoted(wheels),
        "codeb-infra",
        "&&",
        "echo",
        quoted(digest),
        ">",
        quoted(digest_file(venv)),
        "&&",
        "rm",
        "-rf",
        quoted(wheels),
        quoted(archive),
    )


def admin(python: str, subcommand: str, *arguments: str) -> StringCommand:
    """``python -m codeb_infra.api.admin SUBCOMMAND ARGS`` in the API's venv (keys, audit on the app
    server). Option names (``--role``) go as they are; every value is quoted, and one that starts
    with ``-`` is refused."""
    return command(
        quoted(python),
        "-m",
        "codeb_infra.api.admin",
        quoted(subcommand),
        *(a if _OPTION.fullmatch(a) else quoted(a) for a in arguments),
    )


def audit_append(python: str, encoded_entry: str) -> StringCommand:
    """Append an audit row (base64 JSON); a server without the API's venv yet has no log to add to."""
    return command(
        "if",
        "[",
        "-x",
        quoted(python),
        "]",
        ";",
        "then",
        quoted(python),
        "-m",
        "codeb_infra.api.admin",
        "audit-append",
        quoted(encoded_entry),
        ";",
        "fi",
    )
