"""Helpers for the data and backup tests: SQL and Redis on the storage server, run there over SSH
with credentials read from root-only files on the server (none passes through a command line)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from codeb_infra.sandbox import SandboxInfo
from tests.support.sandbox_ssh import ssh

MASTER_ENV = "/etc/codeb/secrets/projects/{project}.env"


def must(result, what: str = "") -> str:
    assert result.returncode == 0, f"{what} exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def sql(info: SandboxInfo, database: str, statements: str) -> str:
    """Statements as the postgres superuser on the storage server (SQL through stdin)."""
    return must(
        ssh(
            info, "storage", f"runuser -u postgres -- psql -X -q -tA -v ON_ERROR_STOP=1 -d {database}", stdin=statements
        ),
        statements[:200],
    ).strip()


def sql_as_project(info: SandboxInfo, project: str, database: str, statements: str):
    """Statements as `project`'s own role, over TCP, with the password from its master env."""
    command = (
        f"set -a; . {MASTER_ENV.format(project=project)}; set +a; "
        'PGPASSWORD="$POSTGRES_PASSWORD" psql -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 '
        f'-U "$POSTGRES_USER" -d {database}'
    )
    return ssh(info, "storage", command, stdin=statements)


def redis_as_project(info: SandboxInfo, project: str, *arguments: str):
    """redis-cli as `project`'s Redis user, password from its master env through REDISCLI_AUTH."""
    command = (
        f"set -a; . {MASTER_ENV.format(project=project)}; set +a; "
        'p="${REDIS_URL#redis://*:}"; export REDISCLI_AUTH="${p%%@*}"; '
        f"redis-cli --no-auth-warning --user {project} -h 127.0.0.1 " + " ".join(arguments)
    )
    return ssh(info, "storage", command)


def redis_admin(info: SandboxInfo, *arguments: str) -> str:
    command = (
        'REDISCLI_AUTH="$(cat /etc/codeb/secrets/redis.password)" redis-cli --no-auth-warning -h 127.0.0.1 '
        + " ".join(arguments)
    )
    return must(ssh(info, "storage", command)).strip()


def storage_status(info: SandboxInfo) -> dict:
    return json.loads(must(ssh(info, "storage", "/usr/local/lib/codeb/codeb-storage status")))


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120, interval: float = 1.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
