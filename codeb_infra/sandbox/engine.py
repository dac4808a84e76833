"""Finds a Docker-API container engine, starting a private podman service when none is reachable.

Docker Engine and `podman system service` speak the same API, so everything else in the sandbox
talks to either through the `docker` SDK.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import DockerException

from .model import SandboxError

# Image imports and `systemctl is-system-running --wait` run longer than the SDK's default 60 s.
API_TIMEOUT = 600
SERVICE_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Engine:
    client: docker.DockerClient
    is_podman: bool
    started_here: bool = False


def candidate_sockets() -> list[str]:
    """Where Docker Engine and podman usually listen, system-wide first, then per user."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
    paths = [
        "/var/run/docker.sock",
        "/run/podman/podman.sock",
        f"{runtime_dir}/docker.sock",
        f"{runtime_dir}/podman/podman.sock",
        str(Path.home() / ".docker" / "run" / "docker.sock"),
    ]
    return [f"unix://{path}" for path in paths if Path(path).is_socket()]


CONTAINERS_CONF = Path(__file__).with_name("containers.conf")


@contextmanager
def connect(echo: Callable[[str], None] = print) -> Iterator[Engine]:
    """Yield an engine: $DOCKER_HOST, else a running engine's socket, else a podman service.

    A podman service started here uses $CONTAINERS_CONF, else the containers.conf shipped beside
    this module (runc and open-file limits that work on cgroups-v1 VMs too), and is stopped on
    exit; the containers it started keep running under their own conmon processes.
    """
    if os.environ.get("DOCKER_HOST"):
        # from_env also honours DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
        try:
            client = docker.from_env(timeout=API_TIMEOUT)
            client.ping()
        except DockerException as error:
            raise SandboxError(
                f"No container engine answers at DOCKER_HOST={os.environ['DOCKER_HOST']}: {error}"
            ) from error
        yield _engine(client)
        return
    for url in candidate_sockets():
        found = _client(url)
        if found is not None:
            yield _engine(found)
            return
    if shutil.which("podman") is None:
        raise SandboxError("No container engine found: start Docker (or set DOCKER_HOST), or install podman.")
    with _podman_service(echo) as client:
        yield _engine(client, started_here=True)


def _client(url: str) -> docker.DockerClient | None:
    try:
        client = docker.DockerClient(base_url=url, timeout=API_TIMEOUT)
        client.ping()
    except DockerException:
        return None
    return client


def _engine(client: docker.DockerClient, *, started_here: bool = False) -> Engine:
    components = client.version().get("Components") or []
    names = [str(component.get("Name", "")).lower() for component in components]
    return Engine(
        client=client,
        is_podman=any("podman" in name for name in names),
        started_here=started_here,
    )


@contextmanager
def _podman_service(echo: Callable[[str], None]) -> Iterator[docker.DockerClient]:
    with tempfile.TemporaryDirectory(prefix="codeb-sandbox-podman-") as tmp:
        url = f"unix://{tmp}/podman.sock"
        log_path = Path(tmp) / "service.log"
        echo(f"Starting podman system service at {url}")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["podman", "system", "service", "--time=0", url],
                env={**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF") or str(CONTAINERS_CONF)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            client = _wait_for_service(url, process, log_path)
            try:
                yield client
            finally:
                client.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_service(url: str, process: subprocess.Popen[bytes], log_path: Path) -> docker.DockerClient:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        client = _client(url)
        if client is not None:
            return client
        time.sleep(0.2)
    log = log_path.read_text(errors="replace")[-2000:]
    raise SandboxError(f"`podman system service` did not answer at {url}:\n{log}")
