#!/usr/bin/env python3
"""codeb-infra's one version: `bump patch|minor|major` raises it in its one source
(codeb_infra/__init__.py, which pyproject.toml reads), `check` fails when any other place that
carries a version (the installed package's metadata, a server-side tool, the API) disagrees.

    python scripts/version.py check
    python scripts/version.py bump patch
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codeb_infra.domain.errors import CodebError  # noqa: E402
from codeb_infra.domain.versions import bumped  # noqa: E402

SOURCE = ROOT / "codeb_infra" / "__init__.py"
ASSIGNED = re.compile(r'^(__version__|VERSION|version)\s*=\s*["\']([^"\']+)["\']', re.MULTILINE)


def source_version() -> str:
    found = re.search(r'^__version__ = "([^"]+)"$', SOURCE.read_text(), re.MULTILINE)
    if found is None:
        raise CodebError(f'{SOURCE} has no __version__ = "X.Y.Z" line')
    return found.group(1)


def disagreements(version: str) -> list[str]:
    problems = []
    pyproject = (ROOT / "pyproject.toml").read_text()
    if 'dynamic = ["version"]' not in pyproject or 'version = {attr = "codeb_infra.__version__"}' not in pyproject:
        problems.append("pyproject.toml must read its version from codeb_infra.__version__ (dynamic)")
    if re.search(r'^version\s*=\s*"', pyproject, re.MULTILINE):
        problems.append("pyproject.toml carries a literal version of its own")
    for path in sorted((ROOT / "codeb_infra").rglob("*.py")):
        if path == SOURCE:
            continue
        for _, found in ASSIGNED.findall(path.read_text(encoding="utf-8")):
            if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", found) and found != version:
                problems.append(f"{path.relative_to(ROOT)} says {found}")
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        if installed("codeb-infra") != version:
            problems.append(f"the installed package says {installed('codeb-infra')} (run scripts/setup.sh)")
    except PackageNotFoundError:
        pass
    return problems


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["check"] and len(argv) == 1:
            version = source_version()
            problems = disagreements(version)
            for problem in problems:
                print(f"version {version}: {problem}", file=sys.stderr)
            print(f"codeb-infra {version}: {'MISMATCH' if problems else 'every place agrees'}")
            return 1 if problems else 0
        if argv[:1] == ["bump"] and len(argv) == 2:
            old = source_version()
            new = bumped(old, argv[1])
            SOURCE.write_text(SOURCE.read_text().replace(f'__version__ = "{old}"', f'__version__ = "{new}"'))
            print(f"codeb-infra {old} -> {new}")
            return 0
    except CodebError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
