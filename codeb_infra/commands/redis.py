"""Redis ACL command lines. The default user's ACL holds only the SHA-256 of the password (`#…`),
computed on the server from the root-only password file: Redis can read its ACL, not the password."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted

ACL_FORMAT = "user default reset on #%s ~* &* +@all"


def _password_hash(password_file: str) -> StringCommand:
    return command('"$(', "sha256sum", "<", quoted(password_file), "|", "cut", "-c1-64", ')"')


def acl_current(*, path: str, password_file: str) -> StringCommand:
    """Print `current` when the ACL file grants the password in `password_file`, else `stale`."""
    return command(
        "if", "[", "-s", quoted(password_file), "]", "&&",
        "[", '"$(cat', quoted(path), '2>/dev/null)"', "=", '"$(printf', quoted(ACL_FORMAT), _password_hash(password_file), ')"', "]", ";",
        "then", "echo", "current", ";", "else", "echo", "stale", ";", "fi",
    )


def write_acl(*, path: str, password_file: str, group: str = "redis") -> StringCommand:
    """Write the ACL file (root:redis 0640) from the password file."""
    staged = f"{path}.new"
    return command(
        "[", "-s", quoted(password_file), "]", "&&", "(", "umask", "027", "&&",
        "printf", quoted(ACL_FORMAT + "\\n"), _password_hash(password_file), ">", quoted(staged), "&&",
        "chown", quoted(f"root:{group}"), quoted(staged), "&&", "chmod", "640", quoted(staged), "&&",
        "mv", "-f", quoted(staged), quoted(path), ")",
    )
