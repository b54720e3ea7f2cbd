#!/usr/bin/env bash
# Makes sure redis-server is on PATH, installing Debian's package when it is
# missing. Tests start their own redis-server on a free loopback port; this
# script never starts one.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server not found; installing it from the OS packages" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: redis-server is missing and apt-get is not available; install redis-server (7.0 or later) and re-run" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: redis-server is missing and installing it needs root; run: apt-get install -y redis-server" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q --no-install-recommends redis-server >&2
# The package starts a system service on port 6379; tests never use it.
command -v redis-server >/dev/null 2>&1 || { echo "error: redis-server still not on PATH after install" >&2; exit 1; }
