#!/bin/sh
# Install the Debian packages gmem builds and tests with, if any is missing.
set -e
pkgs="build-essential cmake pkg-config libcmocka-dev clang clang-format libclang-rt-14-dev llvm libssl-dev python3 abigail-tools busybox-static"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "gmem: installing missing packages:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing
