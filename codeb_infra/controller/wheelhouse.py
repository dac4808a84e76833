"""The API's Python packages for a server that may reach no package index: codeb-infra built from
this checkout plus its dependencies, pinned to the versions installed here, downloaded as wheels for
the server's Python and machine, in one archive (cached by its digest)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from codeb_infra.domain.errors import CodebError

PACKAGE = "codeb-infra"
ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "codeb" / "wheelhouse"


def requirements() -> list[str]:
    """codeb-infra's own dependencies, each pinned to the version this machine runs (and tests)."""
    pins = []
    for requirement in metadata.requires(PACKAGE) or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~;\s\[]", requirement, maxsplit=1)[0]
        pins.append(f"{name}=={metadata.version(name)}")
    return sorted(pins)


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted([ROOT / "pyproject.toml", *(ROOT / "codeb_infra").rglob("*")]):
        if path.is_file() and path.suffix in (".py", ".j2", ".toml", ".html", ".css", ".js"):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def digest(python: str, machine: str) -> str:
    """What a server's venv must have been built from to be current."""
    wanted = "\n".join([python, machine, *requirements(), _source_digest()])
    return hashlib.sha256(wanted.encode()).hexdigest()[:24]


def _platforms(machine: str) -> list[str]:
    tags = ["manylinux_2_17", "manylinux2014", "manylinux_2_28", "manylinux_2_34", "linux"]
    return [p for tag in tags for p in ("--platform", f"{tag}_{machine}")]


def build(python: str, machine: str) -> str:
    """The archive (wheels + requirements.txt) for Python ``python`` (e.g. 3.13) on ``machine``."""
    if not re.fullmatch(r"3\.[0-9]{1,2}", python) or not re.fullmatch(r"[a-z0-9_]+", machine):
        raise CodebError(f"cannot build wheels for Python {python!r} on {machine!r}")
    if not (ROOT / "pyproject.toml").is_file():
        raise CodebError(f"{ROOT} is not a codeb-infra checkout: the API is installed from one")
    archive = CACHE / f"{digest(python, machine)}.tar"
    if archive.is_file():
        return str(archive)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="codeb-wheels-") as wheels:
        pins = requirements()
        Path(wheels, "requirements.txt").write_text("\n".join(pins) + "\n")
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
        tag = python.replace(".", "")
        _run(
            [
                *pip,
                "download",
                "--dest",
                wheels,
                "--only-binary=:all:",
                "--python-version",
                python,
                "--implementation",
                "cp",
                "--abi",
                f"cp{tag}",
                "--abi",
                "abi3",
                "--abi",
                "none",
                *_platforms(machine),
                "-r",
                str(Path(wheels, "requirements.txt")),
            ],
            "download the API's dependencies",
        )
        _run([*pip, "wheel", "--no-deps", "--wheel-dir", wheels, str(ROOT)], "build the codeb-infra wheel")
        partial = archive.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            for item in sorted(os.listdir(wheels)):
                tar.add(os.path.join(wheels, item), arcname=item)
        partial.rename(archive)
    return str(archive)


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CodebError(f"could not {what} on this machine: {(result.stderr or result.stdout).strip()[-1500:]}")
