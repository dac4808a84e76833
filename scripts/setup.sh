#!/usr/bin/env bash
# Installs what codeb-infra and its tests need on a Debian 12 machine (run as root); idempotent.
# Python packages go into the project's own virtual environment (.venv), never into the system
# Python (Debian 12 refuses that: PEP 668), so everything else runs `.venv/bin/python`.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(python3 python3-venv podman runc netavark aardvark-dns iptables catatonit busybox-static curl ca-certificates openssh-client
          mmdebstrap debian-archive-keyring pdns-server pdns-backend-sqlite3 dnsutils postgresql-15 redis-server sqlite3 tcpdump
          chromium chromium-driver)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Every sandbox server runs systemd, which holds inotify instances; the kernel's default of 128 per
# user runs out with a few sandboxes on one machine (servers then never finish booting).
if [ "$(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo 1024)" -lt 1024 ]; then
  sysctl -q -w fs.inotify.max_user_instances=1024 || true
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  rm -rf .venv
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/python -c "import codeb_infra, pyinfra, pydantic, jinja2, click, docker, pytest, hypothesis"
echo "setup done: $(podman --version); Python environment .venv ($(.venv/bin/python --version))"
