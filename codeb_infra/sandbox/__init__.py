"""A local sandbox of the four codeb servers (app, streaming, storage, backup) in containers.

`up()` builds a Debian image once, starts one systemd + sshd container per role on a network of
their own and writes a pyinfra inventory for them; `status()` and `down()` read and remove it.
"""

from .lifecycle import down, status, up
from .model import ROLES, SandboxError, SandboxInfo, ServerInfo

__all__ = ["ROLES", "SandboxError", "SandboxInfo", "ServerInfo", "down", "status", "up"]
