"""codeb-health (the server-side health reader) command lines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pyinfra.api import StringCommand

from codeb_infra.commands import Part, command, quoted
from codeb_infra.domain.data import TOOLS_DIR

HEALTH_TOOL = f"{TOOLS_DIR}/codeb-health"
NOT_INSTALLED = '{"error": "codeb-health is not installed on this server"}'


def _tool(*args: Part) -> StringCommand:
    # Never fails: a missing tool is itself an answer the controller reports.
    return command(
        "if",
        "[",
        "-f",
        HEALTH_TOOL,
        "]",
        ";",
        "then",
        "python3",
        HEALTH_TOOL,
        *args,
        ";",
        "else",
        "echo",
        quoted(NOT_INSTALLED),
        ";",
        "fi",
    )


def _repeat(option: str, values: Iterable[str]) -> list[Part]:
    return [part for value in values for part in (option, quoted(value))]


def read(
    *,
    units: Sequence[str],
    disks: Sequence[str],
    registry: str = "",
    sites: str = "",
    upstreams: str = "",
    locks: str = "",
    wireguard: str = "",
) -> StringCommand:
    app: list[Part] = ["--wireguard", quoted(wireguard)] if wireguard else []
    if registry:
        app += [
            "--registry",
            quoted(registry),
            "--sites",
            quoted(sites),
            "--upstreams",
            quoted(upstreams),
            "--locks",
            quoted(locks),
        ]
    return _tool("read", *_repeat("--unit", units), *_repeat("--disk", disks), *app)


def probe(
    *,
    targets: Sequence[tuple[str, str]],
    resolve: Sequence[str],
    scheme: str,
    port: int,
    cafiles: Sequence[str],
    dns_server: str,
    dns_port: int,
) -> StringCommand:
    return _tool(
        "probe",
        *_repeat("--target", [f"{domain},{path}" for domain, path in targets]),
        *_repeat("--dns", resolve),
        "--scheme",
        quoted(scheme),
        "--port",
        str(int(port)),
        *_repeat("--ca", cafiles),
        "--dns-server",
        quoted(dns_server),
        "--dns-port",
        str(int(dns_port)),
    )


def reach(*, env_files: Sequence[str]) -> StringCommand:
    return _tool("reach", *_repeat("--env-file", env_files))
