"""codeb-env, the app server's env store, run for real against a local root, shipping to a local
codeb-backup (the one the backup server runs) instead of over `ssh codeb-backup`."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from codeb_infra.domain import env
from codeb_infra.domain.env import EnvIndex
from codeb_infra.remote import tool_files

REMOTE = Path(__file__).resolve().parents[2] / "codeb_infra" / "remote"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Tool:
    def __init__(self, tmp: Path) -> None:
        self.root, self.backup = tmp / "codeb", tmp / "backup"
        for source, dest in tool_files("codeb-backup"):  # laid out as the backup role installs it
            (tmp / "tools" / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, tmp / "tools" / dest)
        self.backup_tool = tmp / "tools" / "codeb-backup"
        self.ship = f"{shlex.quote(sys.executable)} {self.backup_tool} --root {self.backup}"

    def run(self, *args: str, ship: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                str(REMOTE / "codeb_env.py"),
                "--root",
                str(self.root),
                *args,
                "--project",
                "shop",
                "--env",
                "production",
            ],
            env={**os.environ, "CODEB_SHIP": ship or self.ship},
            capture_output=True,
            text=True,
            check=False,
        )

    def index(self) -> EnvIndex:
        return EnvIndex.model_validate_json((self.root / "env-backup/shop/production/index.json").read_text())

    def commit(self, values: dict[str, str], ship: str | None = None) -> subprocess.CompletedProcess[str]:
        index = self.index() if (self.root / "env-backup/shop/production/index.json").exists() else EnvIndex()
        entry = env.next_version(index, {}, values, actor="me@here", now=NOW)
        assert entry is not None
        staged = self.root / "env-backup/.staged"
        staged.mkdir(parents=True, exist_ok=True)
        (staged / "c.env").write_text(env.render(values))
        (staged / "c.json").write_text(env.entry_json(entry))
        return self.run("commit", "--content", str(staged / "c.env"), "--entry", str(staged / "c.json"), ship=ship)


@pytest.fixture
def tool(tmp_path: Path) -> Tool:
    return Tool(tmp_path)


def test_a_commit_stores_the_version_makes_it_live_and_ships_it(tool: Tool) -> None:
    done = tool.commit({"A": "s3cr3t"})
    assert done.returncode == 0, done.stderr
    live = tool.root / "env/shop/production.env"
    assert live.read_text() == "A=s3cr3t\n" and stat.S_IMODE(live.stat().st_mode) == 0o600
    version = tool.root / "env-backup/shop/production/1.env"
    assert version.read_text() == "A=s3cr3t\n" and stat.S_IMODE(version.stat().st_mode) == 0o600
    shipped = tool.backup / "env/shop/production/1.env"
    assert shipped.read_text() == "A=s3cr3t\n" and stat.S_IMODE(shipped.stat().st_mode) == 0o600
    assert tool.index().versions[0].shipped
    assert json.loads((tool.backup / "env/shop/production/index.json").read_text())["versions"][0]["shipped"]
    assert "s3cr3t" not in done.stdout + done.stderr


def test_a_version_planned_from_a_stale_index_is_refused(tool: Tool) -> None:
    assert tool.commit({"A": "1"}).returncode == 0
    staged = tool.root / "env-backup/.staged"
    (staged / "c.env").write_text("A=2\n")
    stale = env.next_version(EnvIndex(), {}, {"A": "2"}, actor="x@y", now=NOW)
    assert stale is not None
    (staged / "c.json").write_text(env.entry_json(stale))
    refused = tool.run("commit", "--content", str(staged / "c.env"), "--entry", str(staged / "c.json"))
    assert refused.returncode == 3 and "changed meanwhile" in refused.stderr
    assert (tool.root / "env/shop/production.env").read_text() == "A=1\n"


def test_a_failed_copy_is_loud_leaves_the_version_live_and_the_next_ship_sends_it(tool: Tool) -> None:
    failed = tool.commit({"A": "1"}, ship="false")
    assert failed.returncode == 5 and "NOT on the backup server" in failed.stderr
    assert (tool.root / "env/shop/production.env").read_text() == "A=1\n"
    assert tool.index().unshipped == (1,)
    again = tool.run("ship")
    assert again.returncode == 0, again.stderr
    assert tool.index().unshipped == () and (tool.backup / "env/shop/production/1.env").exists()


def test_fetch_brings_back_a_lost_store_from_the_backup_server(tool: Tool) -> None:
    assert tool.commit({"A": "1"}).returncode == 0
    assert tool.commit({"A": "2"}).returncode == 0
    for path in (tool.root / "env-backup/shop/production").iterdir():
        path.unlink()
    fetched = tool.run("fetch")
    assert fetched.returncode == 0, fetched.stderr
    assert [v.version for v in tool.index().versions] == [1, 2]
    assert (tool.root / "env-backup/shop/production/1.env").read_text() == "A=1\n"


def test_the_backup_server_hands_back_env_files_only(tool: Tool) -> None:
    assert tool.commit({"A": "1"}).returncode == 0
    refused = subprocess.run(
        [sys.executable, str(tool.backup_tool), "--root", str(tool.backup), "get", "dumps/shop/20261201T000000Z.dump"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2 and "only env files" in refused.stderr
