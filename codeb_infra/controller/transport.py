"""The controller's SSH connections: each small packet sent at once.

pyinfra runs every command on a new channel of one paramiko connection, and paramiko leaves
Nagle's algorithm on: the channel's closing packets then wait for the server's delayed ACK,
about 40 ms per remote command. With TCP_NODELAY a command costs one round trip.
"""

from __future__ import annotations

import socket
from typing import Any

from pyinfra.api.state import BaseStateCallback, State


def without_delay(host: Any) -> None:
    """Set TCP_NODELAY on ``host``'s SSH connection, if it has one (``@local`` has none)."""
    client = getattr(host.connector, "client", None)
    transport = client.get_transport() if client is not None else None
    sock = getattr(transport, "sock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelay(BaseStateCallback):
    """Sets TCP_NODELAY on each host's connection as soon as it connects."""

    def host_connect(self, state: State, host: Any) -> None:  # type: ignore[override]
        without_delay(host)
