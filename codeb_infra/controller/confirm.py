"""The controller's side of a confirmed network change: a NEW SSH connection to the server, made
the way pyinfra made the first one, disarms the server's revert timer. When no new connection
gets in before the timer, the server undoes the change by itself and the run fails saying so."""

from __future__ import annotations

import time
from typing import Any

from pyinfra.api import StringCommand
from pyinfra.api.exceptions import OperationError

from codeb_infra.commands import confirm as confirm_commands

CONNECT_TIMEOUT = 5
# How long after the timer the undo may take before the run stops waiting for it.
REVERT_GRACE = 30


def _run_on_new_connection(host: Any, line: StringCommand) -> str:
    """Run `line` over a connection of its own (never pyinfra's already open one)."""
    from pyinfra.connectors.sshuserclient import SSHClient

    kwargs = host.connector.make_paramiko_kwargs()
    hostname = kwargs.pop("hostname")
    kwargs["timeout"] = CONNECT_TIMEOUT
    kwargs["banner_timeout"] = CONNECT_TIMEOUT
    kwargs["auth_timeout"] = CONNECT_TIMEOUT
    client = SSHClient()
    try:
        client.connect(hostname, **kwargs)
        _, stdout, _ = client.exec_command(line.get_raw_value(), timeout=30)
        output: str = stdout.read().decode(errors="replace").strip()
        return output
    finally:
        client.close()


def confirm_change(state: Any, host: Any, what: str, seconds: int) -> None:
    """Disarm the revert timer through a new SSH connection, tried until shortly before the
    timer fires; if none gets in, wait for the server to undo `what` and fail the run."""
    if not hasattr(host.connector, "make_paramiko_kwargs"):
        # Not over SSH (@local, a container connector): no connection to lose.
        host.run_shell_command(confirm_commands.disarm())
        return
    started = time.monotonic()
    deadline = started + seconds - CONNECT_TIMEOUT - 2
    error = "no attempt"
    while True:
        try:
            answer = _run_on_new_connection(host, confirm_commands.disarm())
        except Exception as failure:  # paramiko, socket and timeout errors alike
            error = f"{type(failure).__name__}: {failure}"
        else:
            if answer == confirm_commands.CONFIRMED:
                return
            error = f"the server answered {answer!r}"
            break
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    _wait_for_revert(host, started + seconds + REVERT_GRACE)
    raise OperationError(
        f"{what} on {host.name} undone by the server itself: no new SSH connection got in within "
        f"{seconds}s ({error}); the previous state is back"
    )


def _wait_for_revert(host: Any, until: float) -> None:
    while time.monotonic() < until:
        ok, output = host.run_shell_command(confirm_commands.reverted())
        if ok and "yes" in output.stdout:
            return
        time.sleep(2)
    raise OperationError(f"{host.name}: the change was not confirmed and the server did not report undoing it")
