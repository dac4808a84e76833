"""A real stack on this machine: podman slot containers behind a Caddy process, driven through
the `codeb` CLI and `pyinfra @local deploys/*.py` exactly as users run them."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .caddy import CaddyProcess
from .net import free_loopback_port, http_get
from .podman import CONTAINERS_CONF, podman

ROOT = Path(__file__).resolve().parents[2]
BASE_DOMAIN = "codeb.test"
os.environ.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))


@dataclass
class Stack:
    directory: Path
    caddy: CaddyProcess
    http_port: int
    network: str
    projects: set[str] = field(default_factory=set)

    def data(self, **extra: object) -> dict[str, str]:
        data = {
            "caddyfile": str(self.caddy.config),
            "codeb_dir": str(self.directory / "codeb"),
            "caddy_bin": self.caddy.binary,
            "caddy_user": getpass.getuser(),  # Caddy runs as this test's own user here
            "caddy_log_dir": str(self.directory / "caddy" / "log"),
            "tls": "off",
            "base_domain": BASE_DOMAIN,
            "network": self.network,
            "health_timeout": "10",
            "health_interval": "0.5",
        }
        data.update({k: str(v) for k, v in extra.items()})
        return data

    def codeb(
        self, *args: str, host_data: dict[str, object] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        data_args = [part for k, v in self.data(**(host_data or {})).items() for part in ("--data", f"{k}={v}")]
        command = [sys.executable, "-m", "codeb_infra.cli", *args, "-i", "@local", *data_args]
        return self._run(command, check)

    def pyinfra(self, script: str, *, check: bool = True, **data: object) -> subprocess.CompletedProcess[str]:
        data_args = [
            part
            for k, v in {**self.data(), **{k: str(v) for k, v in data.items()}}.items()
            for part in ("--data", f"{k}={v}")
        ]
        command = [sys.executable, "-m", "pyinfra", "-y", "@local", f"deploys/{script}.py", *data_args]
        return self._run(command, check)

    def _run(self, command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}")
        return result

    def get(self, hostname: str) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{self.http_port}/", host_header=hostname)

    def serves(self, project: str, *, preview: bool = False) -> str:
        name = f"{project}-preview.{BASE_DOMAIN}" if preview else f"{project}.{BASE_DOMAIN}"
        status, body = self.get(name)
        return body.strip() if status == 200 else f"HTTP {status}"

    def status(self, project: str) -> dict:
        return json.loads(self.codeb("status", project, "--json").stdout)

    def slots_json(self) -> dict:
        return json.loads((self.directory / "codeb" / "registry" / "slots.json").read_text())

    def containers(self, project: str) -> dict[str, dict]:
        """Independent of the library's facts: podman inspect of every container of the project."""
        ids = podman("ps", "-a", "-q", "--filter", f"label=codeb.project={project}").stdout.split()
        if not ids:
            return {}
        rows = json.loads(podman("inspect", *ids).stdout)
        return {row["Name"]: row for row in rows}

    def remove_project_containers(self) -> None:
        for project in self.projects:
            ids = podman("ps", "-a", "-q", "--filter", f"label=codeb.project={project}", check=False).stdout.split()
            if ids:
                podman("rm", "--force", "--time", "0", *ids, check=False)


@contextmanager
def open_stack(directory: Path) -> Iterator[Stack]:
    """Start Caddy in ``directory``; on exit remove every container of the stack's projects."""
    http_port = free_loopback_port()
    caddy = CaddyProcess(directory / "caddy", global_options=[f"http_port {http_port}"])
    network = f"codeb-itest-{uuid.uuid4().hex[:6]}"
    caddy.start()
    stack = Stack(directory=directory, caddy=caddy, http_port=http_port, network=network)
    try:
        yield stack
    finally:
        stack.remove_project_containers()
        podman("network", "rm", "--force", network, check=False)
        caddy.stop()
