"""The sandbox servers' base images: a Debian rootfs built by mmdebstrap, imported once per
recipe and tagged with the recipe's hash. Each role gets the Debian release its services ship in."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from docker.errors import ImageNotFound
from pydantic import BaseModel, ConfigDict, model_validator

from .engine import Engine
from .model import SandboxError

IMAGE_REPOSITORY = "localhost/codeb-sandbox-base"

# PostgreSQL 15 and Redis 7 are bookworm's; app and streaming need trixie's podman 5 (Quadlet).
ROLE_RELEASES: dict[str, str] = {
    "app": "trixie",
    "streaming": "trixie",
    "storage": "bookworm",
    "backup": "bookworm",
}

# Runs inside mmdebstrap with the new root filesystem as $1. Host keys are removed so that each
# server makes its own at first boot; units that cannot work in a container are masked so that
# `systemctl is-system-running` reports `running`, not `degraded`; apt's daily jobs are masked so
# that no boot-time apt run holds the lock a first bootstrap needs.
CUSTOMIZE_HOOK = r"""set -e
root="$1"
rm -f "$root"/etc/ssh/ssh_host_*
cat > "$root"/etc/systemd/system/codeb-ssh-host-keys.service <<'UNIT'
[Unit]
Description=Generate this server's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable codeb-ssh-host-keys.service
chroot "$root" systemctl mask getty.target console-getty.service systemd-logind.service \
    systemd-modules-load.service apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
cat > "$root"/etc/ssh/sshd_config.d/codeb-sandbox.conf <<'SSHD'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
SSHD
: > "$root"/etc/machine-id
"""


def debian_mirrors(suite: str) -> tuple[str, ...]:
    return (
        f"deb http://deb.debian.org/debian {suite} main",
        f"deb http://deb.debian.org/debian {suite}-updates main",
        f"deb http://deb.debian.org/debian-security {suite}-security main",
    )


class ImageRecipe(BaseModel):
    model_config = ConfigDict(frozen=True)

    suite: str = "trixie"
    mirrors: tuple[str, ...] = (
        "deb http://deb.debian.org/debian trixie main",
        "deb http://deb.debian.org/debian trixie-updates main",
        "deb http://deb.debian.org/debian-security trixie-security main",
    )
    packages: tuple[str, ...] = (
        "systemd",
        "systemd-sysv",
        "dbus",
        "openssh-server",
        "python3",
        "iproute2",
        "procps",
        "sudo",
        "ca-certificates",
        "curl",
        "netbase",
    )
    customize_hook: str = CUSTOMIZE_HOOK
    changes: tuple[str, ...] = ('CMD ["/sbin/init"]', "STOPSIGNAL SIGRTMIN+3")

    @model_validator(mode="before")
    @classmethod
    def _mirrors_follow_suite(cls, data: object) -> object:
        # A recipe for another release must not fetch from trixie's archive.
        if isinstance(data, dict) and "suite" in data and "mirrors" not in data:
            return {**data, "mirrors": debian_mirrors(data["suite"])}
        return data

    @classmethod
    def for_role(cls, role: str) -> ImageRecipe:
        return cls(suite=ROLE_RELEASES.get(role, "trixie"))

    @property
    def tag(self) -> str:
        digest = hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]
        return f"{IMAGE_REPOSITORY}:{digest}"

    def mmdebstrap_args(self, output: Path) -> list[str]:
        return [
            "mmdebstrap",
            "--variant=minbase",
            f"--include={','.join(self.packages)}",
            '--aptopt=Acquire::Retries "3"',
            f"--customize-hook={self.customize_hook}",
            self.suite,
            str(output),
            *self.mirrors,
        ]


def ensure_image(engine: Engine, recipe: ImageRecipe, echo: Callable[[str], None] = print) -> str:
    """Return the recipe's image tag; build and import the image unless the engine has it."""
    try:
        engine.client.images.get(recipe.tag)
        return recipe.tag
    except ImageNotFound:
        pass
    if shutil.which("mmdebstrap") is None:
        raise SandboxError("Building the sandbox image needs mmdebstrap: `apt-get install mmdebstrap`.")
    echo(f"Building {recipe.tag} with mmdebstrap ({recipe.suite}); this takes about a minute")
    with tempfile.TemporaryDirectory(prefix="codeb-sandbox-image-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        log_path = Path(tmp) / "mmdebstrap.log"
        with open(log_path, "wb") as log:
            result = subprocess.run(
                recipe.mmdebstrap_args(rootfs),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if result.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            raise SandboxError(f"mmdebstrap failed (exit {result.returncode}):\n{tail}")
        echo(f"Importing {recipe.tag}")
        image_id = _import(engine, rootfs, recipe.changes)
    # podman's compatible API ignores the tag of an import, so tag the imported image afterwards.
    engine.client.images.get(image_id).tag(IMAGE_REPOSITORY, recipe.tag.rsplit(":", 1)[1])
    return recipe.tag


def _import(engine: Engine, rootfs: Path, changes: tuple[str, ...]) -> str:
    output = engine.client.api.import_image_from_file(str(rootfs), changes=list(changes))
    for line in reversed(str(output).strip().splitlines()):
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "error" in message:
            raise SandboxError(f"Importing the sandbox image failed: {message['error']}")
        status = str(message.get("status", ""))
        if status.startswith("sha256:"):
            return status
    raise SandboxError(f"Importing the sandbox image returned no image id: {output!r}")
