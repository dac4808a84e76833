"""One version: bumping, the check over every place that carries one, and a server's verdict."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codeb_infra.domain import versions
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.versions import ServerVersion

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("part, expected", [("patch", "1.4.3"), ("minor", "1.5.0"), ("major", "2.0.0")])
def test_bumps(part, expected):
    assert versions.bumped("1.4.2", part) == expected


@pytest.mark.parametrize("bad", ["1.4", "01.2.3", "v1.2.3", "1.2.3-rc1"])
def test_bad_versions_are_refused(bad):
    with pytest.raises(CodebError, match="invalid version"):
        versions.bumped(bad, "patch")


def test_a_server_matches_only_with_the_same_version_and_tools():
    wanted = {"/opt/codeb/bin/codeb-state": "a" * 64}
    same = ServerVersion(version="1.0.0", roles=("app",), tools=wanted)
    assert versions.mismatches("1.0.0", wanted, same, wanted) == []
    assert versions.mismatches("1.0.1", wanted, same, wanted) == ["bootstrapped with 1.0.0, this controller is 1.0.1"]
    assert "differs" in versions.mismatches("1.0.0", wanted, same, {"/opt/codeb/bin/codeb-state": "b" * 64})[0]
    assert "missing" in versions.mismatches("1.0.0", wanted, same, {"/opt/codeb/bin/codeb-state": None})[0]
    assert "bootstrap it" in versions.mismatches("1.0.0", wanted, None, wanted)[0]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for part in ("codeb_infra", "scripts"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _script(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -I: the copy's own package, not the installed one (whose metadata belongs to the real tree)
    return subprocess.run(
        [sys.executable, "-I", str(tree / "scripts" / "version.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=tree,
    )


def test_check_passes_then_fails_when_a_tool_carries_another_version_and_bump_moves_the_source(tree: Path):
    assert _script(tree, "check").returncode == 0
    tool = tree / "codeb_infra" / "remote" / "codeb_env.py"
    tool.write_text(tool.read_text() + '\nVERSION = "9.9.9"\n')
    failed = _script(tree, "check")
    assert failed.returncode == 1 and "codeb_env.py says 9.9.9" in failed.stderr
    tool.write_text(tool.read_text().replace('VERSION = "9.9.9"', ""))
    current = (tree / "codeb_infra" / "__init__.py").read_text()
    assert _script(tree, "bump", "minor").returncode == 0
    assert (tree / "codeb_infra" / "__init__.py").read_text() != current
    assert _script(tree, "bump", "sideways").returncode == 2
