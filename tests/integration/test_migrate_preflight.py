"""`codeb migrate storage --dry-run` against a target that does not answer over SSH: one failed
check line naming why, exit 1, and no command run on the source (here `@local`, whose PostgreSQL
facts would fail to read if the preflight went on)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again once the socket is


def test_an_unreachable_target_is_a_failed_check_line_and_exit_1(tmp_path: Path) -> None:
    inventory, port = tmp_path / "inventory.py", closed_port()
    target = {
        "ssh_hostname": "127.0.0.1",
        "ssh_port": port,
        "ssh_user": "root",
        "ssh_connect_retries": 0,
        "migrate_target": "storage",
        "private_address": "10.77.0.2",
    }
    inventory.write_text(
        f'storage = [("@local", {{"private_address": "10.77.0.1"}})]\ntargets = [("storage-new", {target!r})]\n'
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "codeb_infra.cli",
            "migrate",
            "storage",
            "--to",
            "storage-new",
            "--dry-run",
            "-i",
            str(inventory),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    checks = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert checks == [
        f"[FAIL] target reachable: Could not connect ([Errno None] Unable to connect to port {port} on 127.0.0.1)"
    ], done.stdout
    assert "PostgreSQL" not in done.stdout, "no check that needs the target was made"
