"""Runs podman for the tests with the settings this kind of host needs.

Plain podman fails on VMs where crun cannot set rlimits, so every call goes through here and carries
``CONTAINERS_CONF`` pointing at the containers.conf beside this file.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from .net import LOOPBACK

CONTAINERS_CONF = Path(__file__).parent / "containers.conf"
TEST_LABEL = "codeb.test"
APP_PORT = 3000


def podman_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every podman call runs with."""
    env = dict(os.environ if base is None else base)
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


def podman(*args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` (an argument list, never a shell string) and capture its output."""
    result = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def run_app_container(container: str, image: str, host_port: int) -> None:
    """Start ``image`` detached, its app port published on loopback only.

    ``--pull never`` because no registry is reachable and test images are local anyway.
    """
    podman(
        "run",
        "--detach",
        "--pull=never",
        f"--name={container}",
        f"--label={TEST_LABEL}=1",
        f"--publish={LOOPBACK}:{host_port}:{APP_PORT}",
        image,
    )


def remove_containers(containers: Iterable[str]) -> None:
    """Remove containers by name, ignoring ones that never started; used in cleanup paths."""
    names = list(containers)
    if names:
        podman("rm", "--force", "--time=0", "--ignore", *names, check=False)
