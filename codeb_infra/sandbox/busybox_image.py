"""Small images made from this machine's static busybox, imported into the local engine: the demo
app and the sandbox's Centrifugo stand-in. No registry needed; rebuilt only when content changes."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

from codeb_infra.commands import podman as podman_commands
from codeb_infra.controller.images import local_engine
from codeb_infra.domain.errors import CodebError

BUSYBOX = Path("/bin/busybox")
CONTENT_LABEL = "codeb.test.content"


def _busybox() -> bytes:
    resolved = BUSYBOX.resolve()
    if not resolved.is_file():
        raise CodebError(f"{BUSYBOX} is missing: install Debian's busybox-static to build local images")
    return resolved.read_bytes()


def _engine(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise CodebError(f"{' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result


def _existing_content_label(reference: str) -> str | None:
    result = _engine(podman_commands.local_inspect_args(local_engine(), reference), check=False)
    if result.returncode != 0:
        return None
    inspected = json.loads(result.stdout)
    labels = (inspected[0].get("Labels") or {}) if inspected else {}
    label = labels.get(CONTENT_LABEL)
    return label if isinstance(label, str) else None


def _rootfs(target: Path, busybox: bytes, files: dict[str, tuple[bytes, int]]) -> None:
    with tarfile.open(target, "w") as archive:
        directories = {"bin", "tmp"} | {str(Path(p).parent) for p in files if str(Path(p).parent) != "."}
        for directory in sorted(directories):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for path, (data, mode) in {"bin/busybox": (busybox, 0o755), **files}.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
        sh = tarfile.TarInfo("bin/sh")
        sh.type, sh.linkname = tarfile.SYMTYPE, "busybox"
        archive.addfile(sh)


def build_busybox_image(
    reference: str,
    *,
    files: dict[str, tuple[bytes, int]],
    command: list[str],
    port: int,
    labels: dict[str, str] | None = None,
) -> str:
    """Import busybox plus ``files`` (path -> (content, mode)) as ``reference`` running ``command``."""
    busybox = _busybox()
    digest = hashlib.sha256(hashlib.sha256(busybox).digest())
    for part in (
        json.dumps(command),
        str(port),
        *(f"{k}={v}" for k, v in sorted((labels or {}).items())),
        *(f"{p}:{m}:{hashlib.sha256(d).hexdigest()}" for p, (d, m) in sorted(files.items())),
    ):
        digest.update(part.encode() + b"\0")
    content = digest.hexdigest()[:32]
    if _existing_content_label(reference) == content:
        return reference
    with tempfile.TemporaryDirectory(prefix="codeb-image-") as scratch:
        rootfs = Path(scratch) / "rootfs.tar"
        _rootfs(rootfs, busybox, files)
        changes = [
            f"CMD {json.dumps(command)}",
            f"EXPOSE {port}",
            f"LABEL {CONTENT_LABEL}={content}",
            "ENV PATH=/usr/local/bin:/bin",
            *(f"LABEL {k}={v}" for k, v in sorted((labels or {}).items())),
        ]
        _engine(podman_commands.local_import_args(local_engine(), str(rootfs), reference, changes))
    return reference
