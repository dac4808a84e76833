"""Checks and guards that run as part of a deploy: they change nothing themselves."""

from __future__ import annotations

from pyinfra.api import operation

from codeb_infra.commands import state as state_commands
from codeb_infra.operations import Commands


@operation(is_idempotent=False)
def http_health(*, tool: str, url: str, container: str, interval: float = 1.0, timeout: float = 30.0) -> Commands:
    """
    Poll ``url`` on the server until it answers 2xx; on timeout print the container's last logs and fail.

    **Example:**

    .. code:: python

        checks.http_health(tool=tool, url="http://127.0.0.1:4051/health", container="myapp-production-green")
    """
    yield state_commands.health(tool, url=url, interval=interval, timeout=timeout, container=container)


@operation(is_idempotent=False)
def lock(
    *, tool: str, locks_dir: str, project: str, env: str, holder: str, wait: float = 0.0, break_lock: bool = False
) -> Commands:
    """
    Take the deploy lock of one project/env: fail fast (or after ``wait`` seconds) if another run holds it.

    **Example:**

    .. code:: python

        checks.lock(tool=tool, locks_dir="/opt/codeb/locks", project="myapp", env="production", holder="ci #42")
    """
    yield state_commands.lock(
        tool, locks=locks_dir, project=project, env=env, holder=holder, wait=wait, break_lock=break_lock
    )


@operation(is_idempotent=False)
def unlock(*, tool: str, locks_dir: str, project: str, env: str, holder: str) -> Commands:
    """
    Release the deploy lock this run holds.

    **Example:**

    .. code:: python

        checks.unlock(tool=tool, locks_dir="/opt/codeb/locks", project="myapp", env="production", holder="ci #42")
    """
    yield state_commands.unlock(tool, locks=locks_dir, project=project, env=env, holder=holder)


@operation(is_idempotent=False)
def failure(*, message: str) -> Commands:
    """
    Fail the run with a message (after the lock was released and the failure recorded).

    **Example:**

    .. code:: python

        checks.failure(message="health check of myapp/production green failed")
    """
    yield state_commands.fail(message)


@operation(is_idempotent=False)
def locked_steps(
    *,
    tool: str,
    locks_dir: str,
    project: str,
    env: str,
    holder: str,
    plan: state_commands.StepsPlan,
    wait: float = 0.0,
    break_lock: bool = False,
    audit: state_commands.SwitchAudit | None = None,
) -> Commands:
    """
    Run a change's steps as one server-side command: under the project's deploy lock, each step
    while all before it succeeded; after a failure, the failure steps that apply to it; the
    change's audit row with its outcome; the lock released in any case. A failure fails the
    operation with ``plan.failure`` as its last line.

    + plan: the steps (command lines from the command builders, no secret in any)
    + holder: who takes the lock, as a lock error names it
    + wait / break_lock: wait that many seconds for another run's lock / break a dead run's lock
    + audit: the change's audit row, appended allowed or failed (None: the API writes its own)

    **Example:**

    .. code:: python

        checks.locked_steps(tool=tool, locks_dir="/opt/codeb/locks", project="myapp", env="production",
            holder="deploy by ci #42", plan=plan)
    """
    yield state_commands.steps(
        tool,
        locks=locks_dir,
        project=project,
        env=env,
        holder=holder,
        wait=wait,
        break_lock=break_lock,
        plan=plan,
        audit=audit,
    )
