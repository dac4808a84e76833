"""Commands on the sandbox's servers as root, over their published SSH ports with the sandbox's key."""

from __future__ import annotations

import subprocess

from codeb_infra.sandbox import SandboxInfo

SSH_OPTIONS = [
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
]


def ssh(
    info: SandboxInfo, role: str, command: str, *, stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `command` as root on one server; `stdin` feeds it (secrets go there, not in `command`)."""
    port = str(info.servers[role].ssh_port)
    return subprocess.run(
        ["ssh", "-i", str(info.ssh_key), "-p", port, *SSH_OPTIONS, "root@127.0.0.1", command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
