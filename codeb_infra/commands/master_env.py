"""A project's master env, composed on the storage server from its root-only password files:
the passwords are expanded inside the remote shell (printf is a shell builtin, so they reach no
process's argv) and never appear in a command line, a log or pyinfra's output."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted
from codeb_infra.config.roles import ip_address
from codeb_infra.domain.data import ProjectData

FORMAT = (
    "DATABASE_URL=postgresql://%s:%s@%s:%s/%s\\n"
    "POSTGRES_USER=%s\\n"
    "POSTGRES_PASSWORD=%s\\n"
    "REDIS_URL=redis://%s:%s@%s:%s/0\\n"
    "REDIS_KEY_PREFIX=%s\\n"
)


def _text(data: ProjectData, address: str, postgres_port: int, redis_port: int) -> StringCommand:
    host = f"[{ip_address(address)}]" if ":" in address else ip_address(address)
    pg_password = command('"$(cat', quoted(data.postgres_password_file), ')"')
    redis_password = command('"$(cat', quoted(data.redis_password_file), ')"')
    return command(
        "printf",
        quoted(FORMAT),
        quoted(data.role),
        pg_password,
        quoted(host),
        str(int(postgres_port)),
        quoted(data.database),
        quoted(data.role),
        pg_password,
        quoted(data.redis_user),
        redis_password,
        quoted(host),
        str(int(redis_port)),
        quoted(data.key_prefix),
    )


def _both_passwords(data: ProjectData) -> StringCommand:
    return command(
        "[", "-s", quoted(data.postgres_password_file), "]", "&&", "[", "-s", quoted(data.redis_password_file), "]"
    )


def current(data: ProjectData, address: str, postgres_port: int = 5432, redis_port: int = 6379) -> StringCommand:
    """Print `current` when the file holds exactly what the password files make, else `stale`."""
    path = data.master_env_on_storage
    return command(
        "if",
        _both_passwords(data),
        "&&",
        "[",
        '"$(cat',
        quoted(path),
        '2>/dev/null)"',
        "=",
        '"$(',
        _text(data, address, postgres_port, redis_port),
        ')"',
        "]",
        ";",
        "then",
        "echo",
        "current",
        ";",
        "else",
        "echo",
        "stale",
        ";",
        "fi",
    )


def write(data: ProjectData, address: str, postgres_port: int = 5432, redis_port: int = 6379) -> StringCommand:
    """Write the master env (root:root 0600), atomically."""
    path = data.master_env_on_storage
    staged = f"{path}.new"
    return command(
        _both_passwords(data),
        "&&",
        "(",
        "umask",
        "077",
        "&&",
        "install",
        "-d",
        "-m",
        "700",
        quoted(path.rsplit("/", 1)[0]),
        "&&",
        _text(data, address, postgres_port, redis_port),
        ">",
        quoted(staged),
        "&&",
        "chown",
        "root:root",
        quoted(staged),
        "&&",
        "chmod",
        "600",
        quoted(staged),
        "&&",
        "mv",
        "-f",
        quoted(staged),
        quoted(path),
        ")",
    )


def prepare_copy(path: str) -> StringCommand:
    """An empty root-only file at `{path}.new` for the copy to be written into."""
    staged = f"{path}.new"
    return command(
        "install",
        "-d",
        "-m",
        "700",
        quoted(path.rsplit("/", 1)[0]),
        "&&",
        "install",
        "-m",
        "600",
        "-o",
        "root",
        "-g",
        "root",
        "/dev/null",
        quoted(staged),
    )


def finish_copy(path: str) -> StringCommand:
    return command("chmod", "600", quoted(f"{path}.new"), "&&", "mv", "-f", quoted(f"{path}.new"), quoted(path))
