"""Clients that resolve the domain through a given DNS server before every request (as a browser
whose resolver keeps nothing), then ask the address it named over HTTPS with the domain as SNI and
Host. Run in a child process (spawn) for a bounded time; each request is one sample.

Certificates are not verified here: during a server move the source's and the target's Caddy may
hold certificates of different local CAs, and what this load measures is whether every request
was answered. The test checks the certificates on its own."""

from __future__ import annotations

import multiprocessing
import random
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    start: float
    address: str | None
    status: int | None
    body: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


def resolve_a(name: str, server: str, port: int = 53, timeout: float = 2.0) -> str:
    """One A record of ``name`` from ``server`` (a plain UDP query, no cache)."""
    query_id = random.randrange(65536)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, port))
        answer, _ = sock.recvfrom(4096)
    (answer_id, flags, _, count, _, _) = struct.unpack(">HHHHHH", answer[:12])
    if answer_id != query_id or flags & 0x000F or count == 0:
        raise OSError(f"no A record for {name} (rcode {flags & 0x000F})")
    offset = 12 + len(question) + 4
    for _ in range(count):
        if answer[offset] & 0xC0 == 0xC0:
            offset += 2
        else:
            while answer[offset]:
                offset += answer[offset] + 1
            offset += 1
        rtype, _, _, length = struct.unpack(">HHIH", answer[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            return socket.inet_ntoa(answer[offset : offset + 4])
        offset += length
    raise OSError(f"no A record for {name}")


def fetch(domain: str, address: str, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((address, 443), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode(errors="replace").strip()


def _client(domain: str, dns_server: str, stop: threading.Event, deadline: float, out: list[Sample]) -> None:
    while not stop.is_set() and time.monotonic() < deadline:
        start = time.monotonic()
        address = None
        try:
            address = resolve_a(domain, dns_server)
            status, body = fetch(domain, address)
            out.append(Sample(start, address, status, body))
        except (OSError, ValueError, IndexError) as error:
            out.append(Sample(start, address, None, "", f"{type(error).__name__}: {error}"))
        time.sleep(0.02)


def _child(domain: str, dns_server: str, clients: int, max_seconds: float, stop: object, pipe: object) -> None:
    done = threading.Event()
    samples: list[Sample] = []
    deadline = time.monotonic() + max_seconds
    threads = [
        threading.Thread(target=_client, args=(domain, dns_server, done, deadline, samples)) for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    while time.monotonic() < deadline and not stop.wait(0.1):  # type: ignore[attr-defined]
        pass
    done.set()
    for thread in threads:
        thread.join()
    pipe.send(sorted(samples, key=lambda s: s.start))  # type: ignore[attr-defined]


class ResolvingLoad:
    """``clients`` threads in a child process, at most ``max_seconds``."""

    def __init__(self, domain: str, dns_server: str, clients: int = 4, max_seconds: float = 600) -> None:
        if not dns_server.startswith(("127.", "10.")):
            raise ValueError("load goes only to loopback or the sandbox's own network")
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child, args=(domain, dns_server, clients, max_seconds, self._stop, sender), daemon=True
        )
        self.samples: list[Sample] = []

    def __enter__(self) -> ResolvingLoad:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._receiver.poll(120):
            self.samples = self._receiver.recv()
        self._process.join(10)
