"""Command lines of the app migration: packing the app server's state on the source and
unpacking it on the target, moving slot images, starting the copied slot units, the step record,
free disk and image sizes, and the source's access logs. Archives are made with umask 077 (they
hold env files) and removed after use."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted


def pack(archive: str, paths: Sequence[str]) -> StringCommand:
    """A gzip tar of the given absolute paths that exist (relative to /, owners and modes kept)."""
    relative = [quoted(p.lstrip("/")) for p in paths]
    return command(
        "umask",
        "077",
        "&&",
        "cd",
        "/",
        "&&",
        "tar",
        "--ignore-failed-read",
        "-czf",
        quoted(archive),
        "--",
        *relative,
        "2>/dev/null",
        ";",
        "test",
        "-s",
        quoted(archive),
    )


def unpack(archive: str) -> StringCommand:
    return command("tar", "-xzpf", quoted(archive), "-C", "/", "--same-owner", "&&", "rm", "-f", "--", quoted(archive))


def save_image(image: str, archive: str) -> StringCommand:
    """The image as an archive on the source (for the target's `podman load`)."""
    return command("umask", "077", "&&", "podman", "save", "--quiet", "-o", quoted(archive), quoted(image))


def load_image(archive: str) -> StringCommand:
    return command("podman", "load", "--quiet", "--input", quoted(archive), "&&", "rm", "-f", "--", quoted(archive))


def write_text(path: str, text: str) -> StringCommand:
    """Write a file atomically from base64 (the text may span lines; it holds no secret)."""
    encoded = base64.b64encode(text.encode()).decode()
    tmp = f"{path}.tmp"
    return command(
        "printf", "%s", quoted(encoded), "|", "base64", "-d", ">", quoted(tmp), "&&",
        "mv", "-f", "--", quoted(tmp), quoted(path),
    )  # fmt: skip


def remove(path: str) -> StringCommand:
    return command("rm", "-f", "--", quoted(path))


def image_sizes(images: Sequence[str]) -> StringCommand:
    return command("podman", "image", "inspect", "--format", "'{{.Size}}'", *[quoted(i) for i in images])


def free_bytes(path: str) -> StringCommand:
    """Free bytes of the file system holding ``path`` (or its nearest existing parent)."""
    return command(
        "p=" + "$(", "realpath", "-m", quoted(path), ")", ";",
        "while", "[", "!", "-e", '"$p"', "]", ";", "do", 'p="$(dirname "$p")"', ";", "done", ";",
        "df", "-B1", "--output=avail", '"$p"', "|", "tail", "-n", "1",
    )  # fmt: skip


def start_units(containers: Sequence[str]) -> StringCommand:
    """Let Quadlet generate the copied units, then start each slot's service."""
    return command(
        "systemctl", "daemon-reload", "&&", "systemctl", "start", "--", *[quoted(f"{c}.service") for c in containers]
    )


def write_json(path: str, payload: str) -> StringCommand:
    """Write a small JSON document atomically (0600). ``payload`` holds no secret: it is the step record."""
    tmp = f"{path}.tmp"
    return command(
        "mkdir", "-p", "--", quoted(path.rsplit("/", 1)[0]), "&&",
        "umask", "077", "&&",
        "printf", "'%s\\n'", quoted(payload), ">", quoted(tmp), "&&",
        "mv", "-f", "--", quoted(tmp), quoted(path),
    )  # fmt: skip


def log_tail(path: str, lines: int = 200000) -> StringCommand:
    return command("tail", "-n", str(int(lines)), "--", quoted(path), "2>/dev/null", "||", "true")
