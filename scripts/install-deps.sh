#!/usr/bin/env bash
# Installs the Debian packages ferry needs, only when some are missing.
# Runs apt-get update at most once; works as root, uses sudo otherwise.
set -euo pipefail

packages=(libsqlite3-dev libcurl4-openssl-dev libssh2-1-dev libssl-dev libjemalloc-dev pkg-config
          openssh-server openssh-client sqlite3 curl)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing missing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
