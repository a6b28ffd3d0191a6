#!/bin/sh
# Install the Debian packages terse builds and tests with (run as root or with sudo).
set -e
PKGS="build-essential pkg-config libopenblas-dev libpcre2-dev libjansson-dev libstemmer-dev wordnet-base clang xz-utils python3"
PKGS="$PKGS libmicrohttpd-dev libcurl4-openssl-dev python3-pytest python3-distributed wrk python3-pip python3-venv python3-setuptools python3-wheel"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q || true
$SUDO apt-get install -y -q --no-install-recommends $missing
