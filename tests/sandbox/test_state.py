"""The sandbox's local files and choices that need no container engine."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    load_ssh_private_key,
    load_ssh_public_key,
)

from codeb_infra.sandbox.image import ImageRecipe
from codeb_infra.sandbox.servers import free_ports
from codeb_infra.sandbox.state import (
    StatePaths,
    ensure_key,
    remove_files,
    resolve_state_dir,
    write_text,
)


def test_state_dir_argument_wins_over_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEB_SANDBOX_DIR", str(tmp_path / "from-env"))
    assert resolve_state_dir(tmp_path / "given") == tmp_path / "given"
    assert resolve_state_dir() == tmp_path / "from-env"


def test_state_dir_defaults_under_local_share(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CODEB_SANDBOX_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_state_dir() == tmp_path / ".local" / "share" / "codeb" / "sandbox"


def test_key_pair_is_made_once_and_kept_private(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    assert ensure_key(paths)
    private = paths.key.read_bytes()
    assert not ensure_key(paths)
    assert paths.key.read_bytes() == private
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600
    key = load_ssh_private_key(private, password=None)
    public = load_ssh_public_key(paths.public_key.read_bytes())
    assert key.public_key() == public
    assert paths.public_key.read_text().startswith("ssh-ed25519 ")


def test_write_text_reports_whether_anything_changed(tmp_path: Path) -> None:
    path = tmp_path / "inventory.py"
    assert write_text(path, "a = 1\n")
    assert not write_text(path, "a = 1\n")
    assert write_text(path, "a = 2\n")


def test_remove_files_removes_only_what_exists(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    ensure_key(paths)
    (tmp_path / "notes.txt").write_text("mine")
    assert remove_files(paths) == [str(paths.public_key), str(paths.key)]
    assert (tmp_path / "notes.txt").exists()
    assert remove_files(paths) == []


def test_free_ports_skip_held_and_listening_ports() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        ports = free_ports(3, taken=[busy + 1], start=busy)
    assert busy not in ports
    assert busy + 1 not in ports
    assert len(set(ports)) == 3
    assert all(port > busy + 1 for port in ports)


def test_image_tag_follows_the_recipe() -> None:
    recipe = ImageRecipe()
    assert recipe.tag == ImageRecipe().tag
    assert recipe.tag.startswith("localhost/codeb-sandbox-base:")
    assert ImageRecipe(suite="bookworm").tag != recipe.tag
    assert ImageRecipe(packages=(*recipe.packages, "vim")).tag != recipe.tag
