#!/usr/bin/env bash
# The lint and type checks CI runs (after scripts/setup.sh, which installs ruff and mypy into .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(codeb_infra deploys bench scripts tests)
.venv/bin/ruff check "${paths[@]}"
.venv/bin/ruff format --check "${paths[@]}"
.venv/bin/mypy codeb_infra
