"""The `codeb` command's one error boundary: each kind of failure a user can cause or meet ends
in one line and its documented exit status, without a traceback unless --debug."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from codeb_infra.cli.errors import ExitStatus

REPO = Path(__file__).resolve().parents[2]


def codeb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeb_infra", *args], capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_bad_input_is_exit_2_and_says_nothing_changed() -> None:
    result = codeb("promote", "a;b", "-i", "@local")
    assert result.returncode == ExitStatus.BAD_INPUT
    line = one_error_line(result)
    assert "invalid project name 'a;b'" in line and "nothing was changed" in line


def test_missing_inventory_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"
    result = codeb("status", "shop", "-i", str(missing))
    assert result.returncode == ExitStatus.BAD_INPUT
    assert f"inventory file {missing} does not exist" in one_error_line(result)


def test_inventory_that_does_not_import_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("app = [(\n")
    result = codeb("status", "shop", "-i", str(broken))
    assert result.returncode == ExitStatus.BAD_INPUT
    line = one_error_line(result)
    assert f"inventory {broken} could not be loaded" in line and "SyntaxError" in line


def test_unreachable_host_is_named_with_its_ssh_error(tmp_path: Path) -> None:
    port = closed_port()
    inventory = tmp_path / "inventory.py"
    inventory.write_text(
        f"app = [('app', {{'ssh_hostname': '127.0.0.1', 'ssh_port': {port}, "
        "'ssh_known_hosts_file': '/dev/null', 'ssh_connect_retries': 0})]\n"
    )
    result = codeb("promote", "shop", "-i", str(inventory))
    assert result.returncode == ExitStatus.FAILED
    line = one_error_line(result)
    assert line.startswith("error: cannot reach app: ") and str(port) in line, line
    assert "No hosts remaining" not in result.stderr


def test_usage_errors_are_exit_2() -> None:
    result = codeb("deploy", "shop")  # --image is required
    assert result.returncode == ExitStatus.BAD_INPUT
    assert "Missing option '--image'" in result.stderr


@pytest.mark.parametrize("debug", [False, True])
def test_traceback_only_with_debug(tmp_path: Path, debug: bool) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("app = [(\n")
    result = codeb(*(["--debug"] if debug else []), "status", "shop", "-i", str(broken))
    assert result.returncode == ExitStatus.BAD_INPUT
    assert ("Traceback" in result.stderr) is debug
