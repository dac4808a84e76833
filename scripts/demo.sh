#!/usr/bin/env bash
# Sets up this machine, then runs the blue-green walkthrough on four local sandbox servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/codeb_infra/sandbox/containers.conf}"
exec .venv/bin/python -m codeb_infra demo "$@"
