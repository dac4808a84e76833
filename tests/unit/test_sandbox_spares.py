"""The sandbox's spare servers: names, fixed addresses, and the inventory `up --spare` writes,
read back by pyinfra's own inventory loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeb_infra.config.network import NetworkSettings, mesh_hosts
from codeb_infra.sandbox import ROLES, SandboxError, ServerInfo
from codeb_infra.sandbox.inventory import SHARED_DATA, render_inventory, spare_mesh_address
from codeb_infra.sandbox.model import base_role, server_index, server_names, spare_name, spare_role
from tests.support import isolated


def servers(names: tuple[str, ...]) -> dict[str, ServerInfo]:
    return {
        name: ServerInfo(
            role=name,
            container=f"codeb-sandbox-{name}",
            container_id=f"{index:064x}",
            state="running",
            ssh_port=2221 + index,
            address=f"10.89.0.{index + 10}",
        )
        for index, name in enumerate(names)
    }


def read_inventory(path: str, cwd: str) -> dict[str, object]:
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    with ctx_state.use(State()):
        inventory = make_inventory(path, cwd=cwd)
    return {
        "hosts": sorted(host.name for host in inventory),
        "groups": {group: [h.name for h in inventory.get_group(group, [])] for group in [*ROLES, "targets"]},
        "data": {host.name: dict(host.data.dict()) for host in inventory},
    }


def load(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "inventory.py"
    path.write_text(text)
    return isolated.call(read_inventory, str(path), str(tmp_path))


def test_names_and_places() -> None:
    assert server_names() == ROLES
    assert server_names(["app", "storage"]) == (*ROLES, "storage-target", "app-target")
    assert server_names(["app"]) == (*ROLES, "app-target")
    assert spare_role("storage-target") == "storage" and spare_role("storage") is None
    assert spare_role("backup-target") is None
    assert base_role("app-target") == "app" and base_role("backup") == "backup"
    assert [server_index(n) for n in (*ROLES, "storage-target", "app-target")] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(SandboxError, match="no spare server for 'backup'"):
        spare_name("backup")


def test_without_spares_the_inventory_is_the_four_servers(tmp_path: Path) -> None:
    text = render_inventory(servers(ROLES), Path("/state/id_ed25519"))
    assert "targets" not in text and "migrate_target" not in text
    inventory = load(tmp_path, text)
    assert inventory["hosts"] == sorted(ROLES)
    assert inventory["groups"]["targets"] == []


def test_spares_sit_in_targets_with_their_role_and_mesh_address(tmp_path: Path) -> None:
    names = server_names(["storage", "app"])
    data = {"storage": {"archive_timeout": 10}, "app": {"caddy_upload": "/usr/bin/caddy"}}
    inventory = load(tmp_path, render_inventory(servers(names), Path("/state/id_ed25519"), data))
    assert inventory["hosts"] == sorted(names)
    assert inventory["groups"]["targets"] == ["storage-target", "app-target"]
    for role in ROLES:
        assert inventory["groups"][role] == [role]
    spare = inventory["data"]["storage-target"]
    assert spare["migrate_target"] == "storage"
    assert spare["mesh_address"] == "10.77.0.5"
    assert spare["archive_timeout"] == 10  # what the storage server gets from this machine
    assert spare["mesh_network"] == SHARED_DATA["mesh_network"]  # the `all` group's data
    assert spare["private_address"] == "10.89.0.14"
    app = inventory["data"]["app-target"]
    assert (app["migrate_target"], app["mesh_address"], app["caddy_upload"]) == ("app", "10.77.0.6", "/usr/bin/caddy")
    assert "migrate_target" not in inventory["data"]["storage"]


def test_spare_mesh_addresses_follow_backups_and_collide_with_none() -> None:
    assert spare_mesh_address("storage-target") == "10.77.0.5"
    assert spare_mesh_address("app-target") == "10.77.0.6"
    roles = {"storage-target": (), "app-target": ()}
    members = mesh_hosts(
        (
            name,
            roles.get(name, (name,)),
            {
                **SHARED_DATA,
                "private_address": f"10.89.0.{i + 10}",
                **({"mesh_address": spare_mesh_address(name)} if name in roles else {}),
            },
        )
        for i, name in enumerate(server_names(["storage", "app"]))
    )
    assert [m.address for m in members] == [f"10.77.0.{n}" for n in range(1, 7)]
    assert NetworkSettings.from_data(SHARED_DATA).mesh


def test_a_spare_without_an_address_is_refused() -> None:
    names = server_names(["storage"])
    broken = servers(names)
    broken["storage-target"] = broken["storage-target"].model_copy(update={"address": None})
    with pytest.raises(SandboxError, match="storage-target server has no SSH port or address"):
        render_inventory(broken, Path("/k"))
