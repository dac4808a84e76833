#!/usr/bin/env bash
# Installs what the tests need, then runs them all: unit, real podman + Caddy, and the four-server sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Hosts where crun cannot set rlimits (VMs with hybrid cgroups) need runc and lower ulimits.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/tests/support/containers.conf}"
exec python3 -m pytest -q -p no:cacheprovider "$@"
