#!/usr/bin/env bash
# Installs what codeb-infra and its tests need on a Debian 12 machine (run as root); idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(podman runc netavark aardvark-dns busybox-static curl ca-certificates openssh-client mmdebstrap debian-archive-keyring pdns-server pdns-backend-sqlite3 dnsutils postgresql-15 redis-server)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -c "import codeb_infra, pyinfra, pydantic, jinja2, click, docker, pytest, hypothesis"
echo "setup done: $(podman --version)"
