"""The private network and the firewall as they are on a server: its WireGuard public key, each
peer's latest handshake (`wg show`), and codeb's nftables table live and as last loaded (`nft -j`),
so a rule changed by hand shows as drift."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict
from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import nftables as nft_commands
from codeb_infra.commands import wireguard as wg_commands
from codeb_infra.config.network import wireguard_key
from codeb_infra.domain.errors import CodebError
from codeb_infra.facts.files import TextFile


class WireguardPublicKey(TextFile):
    """The server's WireGuard public key, None when it has none yet."""

    def process(self, output: list[str]) -> str | None:
        text = super().process(output)
        if text is None or not text.strip():
            return None
        return wireguard_key(text)


class WireguardHandshakes(FactBase[dict[str, int] | None]):
    """Each peer's latest handshake as epoch seconds (0: never), by public key; None when the
    interface is down."""

    def command(self, interface: str) -> StringCommand:
        return wg_commands.latest_handshakes(interface)

    @staticmethod
    def default() -> dict[str, int] | None:
        return None

    def process(self, output: list[str]) -> dict[str, int] | None:
        if output == [wg_commands.DOWN]:
            return None
        found = {}
        for line in output:
            if not line.strip():
                continue
            try:
                key, stamp = line.split()
                found[wireguard_key(key)] = int(stamp)
            except (ValueError, CodebError):
                raise CodebError(f"unexpected `wg show latest-handshakes` line: {line[:80]!r}") from None
        return found


def _without_handles(value: Any) -> Any:
    # Handles are renumbered on every load; the rules themselves are what must not drift.
    if isinstance(value, dict):
        return {k: _without_handles(v) for k, v in value.items() if k != "handle"}
    if isinstance(value, list):
        return [_without_handles(v) for v in value]
    return value


def table_rules(listing: str) -> list[Any] | None:
    """The table's objects from `nft -j list table ...`, without the metainfo and the handles."""
    if listing.strip() == nft_commands.MISSING:
        return None
    try:
        objects = json.loads(listing)["nftables"]
    except (ValueError, KeyError, TypeError):
        raise CodebError(f"unexpected `nft -j` output: {listing[:80]!r}") from None
    return [_without_handles(item) for item in objects if "metainfo" not in item]


class Firewall(BaseModel):
    model_config = ConfigDict(frozen=True)

    live: list[Any] | None
    """codeb's table as loaded in the kernel now (None: no table)."""
    recorded: list[Any] | None
    """The table right after codeb last loaded it (None: never loaded)."""

    @property
    def drifted(self) -> bool:
        return self.live != self.recorded

    @property
    def rule_count(self) -> int:
        return sum(1 for item in self.live or [] if "rule" in item)


class FirewallState(FactBase[Firewall]):
    """codeb's nftables table, live and as recorded when it was loaded."""

    def command(self, family: str, table: str, recorded: str) -> StringCommand:
        return nft_commands.firewall_state(family, table, recorded)

    @staticmethod
    def default() -> Firewall:
        return Firewall(live=None, recorded=None)

    def process(self, output: list[str]) -> Firewall:
        lines = [line for line in output if line.strip()]
        if len(lines) != 2:
            raise CodebError(f"unexpected firewall state: {len(lines)} lines")
        return Firewall(live=table_rules(lines[0]), recorded=table_rules(lines[1]))
