"""A tiny demo app image, built locally from a static busybox: what the demo deploys and what
the tests and benches deploy.

No registry is needed: the image is assembled with ``podman import`` (or ``docker import``) and
carries a label with a hash of its content, so it is rebuilt only when something that shapes it
changed. ``/`` answers a body such as "v1"; ``/health`` answers 200 unless the image is built
unhealthy, which is how a release that must fail its health check is made.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path

import subprocess

from codeb_infra.images import local_engine

APP_PORT = 3000
IMAGE_REPOSITORY = "localhost/codeb-test-app"
CONTENT_LABEL = "codeb.test.content"
BUSYBOX = Path("/bin/busybox")

# busybox httpd as PID 1 ignores SIGTERM, which would make every `podman stop` wait out its
# timeout; the shell traps TERM and exits, and the kernel then ends httpd with the namespace.
SERVE_COMMAND = [
    "/bin/busybox",
    "sh",
    "-c",
    f'trap "exit 0" TERM; /bin/busybox httpd -f -p {APP_PORT} -h /www & wait',
]

# What v1/v2/v3 mean to tests: two healthy releases that differ only in body, and a broken one.
STANDARD_IMAGES: dict[str, tuple[str, bool]] = {
    "v1": ("v1", True),
    "v2": ("v2", True),
    "v3": ("v3", False),
}


def image_reference(tag: str, repository: str = IMAGE_REPOSITORY) -> str:
    """The full local reference of the app image tagged ``tag``."""
    return f"{repository}:{tag}"


def _busybox() -> Path:
    resolved = BUSYBOX.resolve()
    if not resolved.is_file():
        raise FileNotFoundError(
            f"{BUSYBOX} is missing: install Debian's busybox-static to build test images"
        )
    return resolved


def _content_hash(busybox: bytes, body: str, healthy: bool) -> str:
    digest = hashlib.sha256()
    for part in (
        hashlib.sha256(busybox).hexdigest(),
        body,
        str(healthy),
        json.dumps(SERVE_COMMAND),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def _engine(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([local_engine(), *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise RuntimeError(f"{local_engine()} {args[0]} failed: {result.stderr.strip()}")
    return result


def _existing_content_label(reference: str) -> str | None:
    result = _engine("image", "inspect", reference, check=False)
    if result.returncode != 0:
        return None
    inspected = json.loads(result.stdout)
    labels = (inspected[0].get("Labels") or {}) if inspected else {}
    label = labels.get(CONTENT_LABEL)
    return label if isinstance(label, str) else None


def _add_file(archive: tarfile.TarFile, path: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    archive.addfile(info, io.BytesIO(data))


def _add_dir(archive: tarfile.TarFile, path: str) -> None:
    info = tarfile.TarInfo(path)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    archive.addfile(info)


def _write_rootfs(target: Path, busybox: bytes, body: str, healthy: bool) -> None:
    with tarfile.open(target, "w") as archive:
        for directory in ("bin", "www", "tmp"):
            _add_dir(archive, directory)
        _add_file(archive, "bin/busybox", busybox, 0o755)
        _add_file(archive, "www/index.html", f"{body}\n".encode(), 0o644)
        if healthy:
            _add_file(archive, "www/health", b"ok\n", 0o644)


def build_test_image(tag: str, body: str, healthy: bool = True, repository: str = IMAGE_REPOSITORY) -> str:
    """Build ``localhost/codeb-test-app:<tag>`` and return its reference.

    ``/`` answers ``body``; ``/health`` answers 200 "ok" when ``healthy``, else 404, which is how
    tests make a release that must fail its health check. The app listens on container port 3000.
    An image with the same content label is reused, so calling this from every test is cheap.
    """
    reference = image_reference(tag, repository)
    busybox = _busybox().read_bytes()
    content = _content_hash(busybox, body, healthy)
    if _existing_content_label(reference) == content:
        return reference
    with tempfile.TemporaryDirectory(prefix="codeb-test-image-") as scratch:
        rootfs = Path(scratch) / "rootfs.tar"
        _write_rootfs(rootfs, busybox, body, healthy)
        _engine(
            "import",
            f"--change=CMD {json.dumps(SERVE_COMMAND)}",
            f"--change=EXPOSE {APP_PORT}",
            f"--change=LABEL {CONTENT_LABEL}={content}",
            "--message=codeb-infra test app",
            str(rootfs),
            reference,
        )
    return reference


def ensure_images() -> dict[str, str]:
    """Build v1 and v2 (healthy, bodies "v1"/"v2") and v3 (no /health); map tag to reference."""
    return {
        tag: build_test_image(tag, body, healthy)
        for tag, (body, healthy) in STANDARD_IMAGES.items()
    }
