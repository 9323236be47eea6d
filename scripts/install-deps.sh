#!/usr/bin/env bash
# Installs everything Hearth needs to build, test and benchmark on Debian 12.
# Safe to run again: it only calls apt-get when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build ccache git
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libboost-program-options-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev openssl
  python3 python3-zmq python3-msgpack python3-h2 nghttp2-server
  clang-format redis-server
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
