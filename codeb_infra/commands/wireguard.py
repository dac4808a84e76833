"""WireGuard command lines: a key made on the server (the private key never leaves it), and what
`wg` reports about the mesh."""

from __future__ import annotations

import posixpath
import shlex

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted, safe

DOWN = "__codeb_no_interface__"


def make_key(private: str, public: str) -> StringCommand:
    """A private key in a root-only file unless one exists (never replaced), and its public key
    beside it. Only the public key is ever printed."""
    staged = f"{private}.new"
    return command(
        "install",
        "-d",
        "-m",
        "700",
        quoted(posixpath.dirname(private)),
        "&&",
        "{",
        "[",
        "-s",
        quoted(private),
        "]",
        "||",
        "(",
        "umask",
        "077",
        "&&",
        "wg",
        "genkey",
        ">",
        quoted(staged),
        "&&",
        "[",
        "-s",
        quoted(staged),
        "]",
        "&&",
        "mv",
        "-f",
        quoted(staged),
        quoted(private),
        ")",
        ";",
        "}",
        "&&",
        "chmod",
        "600",
        quoted(private),
        "&&",
        "wg",
        "pubkey",
        "<",
        quoted(private),
        ">",
        quoted(f"{public}.new"),
        "&&",
        "mv",
        "-f",
        quoted(f"{public}.new"),
        quoted(public),
    )


def latest_handshakes(interface: str) -> StringCommand:
    """`PUBLIC_KEY<TAB>EPOCH` per peer (0: never), or the DOWN marker when there is no interface."""
    return command("wg", "show", quoted(interface), "latest-handshakes", "2>/dev/null", "||", "echo", DOWN)


def interface_address(interface: str) -> StringCommand:
    return command("ip", "-j", "address", "show", "dev", quoted(interface), "2>/dev/null", "||", "echo", "[]")


def sync_line(interface: str, config: str, key_file: str) -> str:
    """A shell line (bash) that applies `config`'s peers and port to the running interface without
    taking it down (stopping a wireguard-go interface can hang). `wg syncconf` would drop a key that
    the file does not hold, so the key is added to what it reads, from the key file itself: never
    on a command line. Holds neither `$` nor `%` (systemd would expand them)."""
    for value in (interface, config, key_file):
        safe(value)
    add_key = '{print} /^.Interface]/ {getline k < f; print "PrivateKey = " k}'
    script = (
        f"wg syncconf {shlex.quote(interface)} <(wg-quick strip {shlex.quote(config)} | "
        f"awk -v f={shlex.quote(key_file)} {shlex.quote(add_key)})"
    )
    return f"bash -c {shlex.quote(script)}"


def sync(interface: str, config: str, key_file: str) -> StringCommand:
    return command(sync_line(interface, config, key_file))
