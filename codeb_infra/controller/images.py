"""Images that exist only on the controller (built in CI or on a laptop): copy them to the server
over the same SSH connection, so deploys need no registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from codeb_infra.commands import podman as podman_commands
from codeb_infra.domain.errors import CodebError


def local_engine() -> str:
    for engine in ("podman", "docker"):
        if shutil.which(engine):
            return engine
    raise CodebError("push needs podman or docker on this machine to read the local image")


def local_image_id(image: str) -> str:
    engine = local_engine()
    result = subprocess.run(podman_commands.local_image_id_args(engine, image), capture_output=True, text=True)
    if result.returncode != 0:
        raise CodebError(f"image {image} does not exist on this machine ({engine} image inspect failed)")
    return result.stdout.strip().removeprefix("sha256:")


def save_to_archive(image: str) -> str:
    """Write the image to a temporary archive on the controller; the caller uploads and removes it."""
    engine = local_engine()
    fd, archive = tempfile.mkstemp(prefix="codeb-image-", suffix=".tar")
    os.close(fd)
    os.unlink(archive)  # the engine refuses to overwrite
    result = subprocess.run(podman_commands.local_save_args(engine, image, archive), capture_output=True, text=True)
    if result.returncode != 0:
        raise CodebError(f"could not save {image} with {engine}: {result.stderr.strip()}")
    return archive
