"""What a storage or backup server's codeb-report answers the API's report key: each asked
report's output, or why there is none (a refused key, a dead link, a refused report)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import ssh as ssh_commands

NO_REPORTS = "no reports over SSH with the API's report key (codeb bootstrap authorizes it)"


def parse(output: list[str]) -> dict[str, Any]:
    """``{"outputs": {report: its output lines}}`` or ``{"error": one line}``."""
    for line in output:
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(value, dict):
            continue
        if "error" in value:
            return {"error": f"codeb-report said: {str(value['error'])[:300]}"}
        return {
            "outputs": {
                str(name): str(answer.get("output") or "").splitlines()
                for name, answer in value.items()
                if isinstance(answer, dict)
            }
        }
    said = " ".join(line.strip() for line in output if line.strip())
    return {"error": f"{NO_REPORTS}: {said[-300:] or 'no answer'}"}


class ServerReports(FactBase[dict[str, Any]]):
    """One SSH call from this server to ``address`` with the report key, asking for ``reports``."""

    def command(self, key: str, known_hosts: str, user: str, address: str, reports: Sequence[str]) -> StringCommand:
        return ssh_commands.report(key=key, known_hosts=known_hosts, user=user, address=address, reports=list(reports))

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse(output)

    @staticmethod
    def default() -> dict[str, Any]:
        return {"error": f"{NO_REPORTS}: no answer"}
