"""The inventory `up` writes, read back by pyinfra's own inventory loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeb_infra.sandbox import ROLES, SandboxError, ServerInfo
from codeb_infra.sandbox.inventory import render_inventory
from tests.support import isolated


def servers(**overrides: object) -> dict[str, ServerInfo]:
    result = {}
    for index, role in enumerate(ROLES):
        fields = {
            "role": role,
            "container": f"codeb-sandbox-{role}",
            "container_id": f"{index:064x}",
            "state": "running",
            "ssh_port": 2221 + index,
            "address": f"10.89.0.{index + 2}",
        }
        fields.update(overrides.get(role, {}))  # type: ignore[call-overload]
        result[role] = ServerInfo(**fields)
    return result


def read_inventory(path: str, cwd: str) -> dict[str, object]:
    """pyinfra's own loader on the file (in the isolated process: it gevent-patches its process):
    each host's groups and data."""
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    # pyinfra reads inventory files with a deploy state in context, as its CLI does.
    with ctx_state.use(State()):
        inventory = make_inventory(path, cwd=cwd)
    return {
        "hosts": sorted(host.name for host in inventory),
        "groups": {role: [host.name for host in inventory.get_group(role)] for role in ROLES},
        "data": {host.name: dict(host.data.dict()) for host in inventory},
    }


def load(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "inventory.py"
    path.write_text(text)
    return isolated.call(read_inventory, str(path), str(tmp_path))


def test_one_group_and_one_host_per_role(tmp_path: Path) -> None:
    inventory = load(tmp_path, render_inventory(servers(), Path("/state/id_ed25519")))
    assert inventory["hosts"] == sorted(ROLES)
    for role in ROLES:
        assert inventory["groups"][role] == [role]
    assert not isolated.gevent_patched()


def test_hosts_carry_ssh_settings_and_addresses(tmp_path: Path) -> None:
    inventory = load(tmp_path, render_inventory(servers(), Path("/state/it's here/id_ed25519")))
    for index, role in enumerate(ROLES):
        data = inventory["data"][role]
        assert data["ssh_hostname"] == "127.0.0.1"
        assert data["ssh_port"] == 2221 + index
        assert data["ssh_user"] == "root"
        assert data["ssh_key"] == "/state/it's here/id_ed25519"
        assert data["ssh_known_hosts_file"] == "/dev/null"
        assert data["ssh_strict_host_key_checking"] == "no"
        assert data["private_address"] == f"10.89.0.{index + 2}"
        assert data["base_domain"] == "codeb.test"
        assert data["tls"] == "internal"


def test_a_server_without_a_port_cannot_be_written() -> None:
    with pytest.raises(SandboxError, match="storage"):
        render_inventory(servers(storage={"ssh_port": None}), Path("/state/id_ed25519"))
