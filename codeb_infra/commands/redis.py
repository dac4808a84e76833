"""Redis command lines. The ACL file holds only SHA-256 hashes of passwords (`#…`), computed on
the server from root-only password files: Redis can read its ACL, not the passwords. The default
user has the admin password; each project has a user limited to its own key prefix.
redis-cli gets the password from REDISCLI_AUTH, set inside the remote shell, never from argv."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted

DEFAULT_USER = "user default reset on #%s ~* &* +@all"
# A project's user: its own keys and channels (`{project}:`), no admin or dangerous commands.
PROJECT_USER = "user %s reset on #%s ~%s:* &%s:* +@all -@admin -@dangerous"


def _password_hash(password_file: str | StringCommand) -> StringCommand:
    source = quoted(password_file) if isinstance(password_file, str) else password_file
    return command('"$(', "sha256sum", "<", source, "|", "cut", "-c1-64", ')"')


def _acl_text(password_file: str, users_dir: str) -> StringCommand:
    """`{ … }` printing the ACL file's wanted content: the default user, then one line per
    `{users_dir}/{user}.password`."""
    return command(
        "{",
        "printf",
        quoted(DEFAULT_USER + "\\n"),
        _password_hash(password_file),
        ";",
        "for",
        "f",
        "in",
        "$(",
        "find",
        quoted(users_dir),
        "-maxdepth",
        "1",
        "-name",
        quoted("*.password"),
        "2>/dev/null",
        "|",
        "sort",
        ")",
        ";",
        "do",
        "[",
        "-s",
        '"$f"',
        "]",
        "||",
        "continue",
        ";",
        'u="$(basename',
        '"$f"',
        '.password)"',
        ";",
        "printf",
        quoted(PROJECT_USER + "\\n"),
        '"$u"',
        _password_hash(command('"$f"')),
        '"$u"',
        '"$u"',
        ";",
        "done",
        ";",
        "}",
    )


def acl_current(*, path: str, password_file: str, users_dir: str) -> StringCommand:
    """Print `current` when the ACL file grants exactly the wanted users and passwords, else `stale`."""
    return command(
        "if",
        "[",
        "-s",
        quoted(password_file),
        "]",
        "&&",
        "[",
        '"$(cat',
        quoted(path),
        '2>/dev/null)"',
        "=",
        '"$(',
        _acl_text(password_file, users_dir),
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


def write_acl(*, path: str, password_file: str, users_dir: str, group: str = "redis") -> StringCommand:
    """Write the ACL file (root:redis 0640) from the password files."""
    staged = f"{path}.new"
    return command(
        "[",
        "-s",
        quoted(password_file),
        "]",
        "&&",
        "(",
        "umask",
        "027",
        "&&",
        _acl_text(password_file, users_dir),
        ">",
        quoted(staged),
        "&&",
        "chown",
        quoted(f"root:{group}"),
        quoted(staged),
        "&&",
        "chmod",
        "640",
        quoted(staged),
        "&&",
        "mv",
        "-f",
        quoted(staged),
        quoted(path),
        ")",
    )


def cli(password_file: str, *arguments: str, port: int = 6379) -> StringCommand:
    """redis-cli on loopback as the default user; the password travels in REDISCLI_AUTH."""
    return command(
        'REDISCLI_AUTH="$(cat',
        quoted(password_file),
        ')"',
        "redis-cli",
        "--no-auth-warning",
        "-h",
        "127.0.0.1",
        "-p",
        str(int(port)),
        *(quoted(a) for a in arguments),
    )


def acl_load(password_file: str) -> StringCommand:
    """Make a running Redis read its ACL file again (no restart); fails unless Redis says OK."""
    return command(cli(password_file, "ACL", "LOAD"), "|", "grep", "-qx", "OK")


def config_get(password_file: str, parameters: Sequence[str]) -> StringCommand:
    """`name` and `value` lines for each parameter, as the running Redis has them."""
    return command(cli(password_file, "CONFIG", "GET", *parameters), "2>/dev/null", "||", "true")


def config_set(password_file: str, values: Mapping[str, str]) -> StringCommand:
    pairs = [part for key, value in values.items() for part in (key, value)]
    return command(cli(password_file, "CONFIG", "SET", *pairs), "|", "grep", "-qx", "OK")
