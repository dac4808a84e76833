"""The sandbox's files on this machine: where they live and the SSH key its servers trust."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ENV_VAR = "CODEB_SANDBOX_DIR"


def resolve_state_dir(state_dir: Path | None = None) -> Path:
    """The argument, else $CODEB_SANDBOX_DIR, else ~/.local/share/codeb/sandbox."""
    if state_dir is not None:
        return Path(state_dir).expanduser().absolute()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().absolute()
    from codeb_infra.sandbox.model import DEFAULT_INSTANCE, instance

    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    name = instance()
    return Path(data_home) / "codeb" / ("sandbox" if name == DEFAULT_INSTANCE else name)


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def public_key(self) -> Path:
        return self.root / "id_ed25519.pub"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.py"

    def files(self) -> tuple[Path, ...]:
        return (self.inventory, self.public_key, self.key)


def ensure_key(paths: StatePaths) -> bool:
    """Create the sandbox's ed25519 key pair unless it exists; True when it was created."""
    if paths.key.exists() and paths.public_key.exists():
        return False
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    _write(paths.key, private, mode=0o600)
    _write(paths.public_key, public + b" codeb-sandbox\n", mode=0o644)
    return True


def write_text(path: Path, text: str) -> bool:
    """Write text unless the file already holds it; True when the file changed."""
    data = text.encode()
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write(path, data, mode=0o644)
    return True


def remove_files(paths: StatePaths) -> list[str]:
    removed = []
    for path in paths.files():
        if path.exists():
            path.unlink()
            removed.append(str(path))
    return removed


def _write(path: Path, data: bytes, *, mode: int) -> None:
    # Write beside the target and rename, so a reader never sees half a key; the mode is set at
    # creation, so the private key is never readable by others, not even for a moment.
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
