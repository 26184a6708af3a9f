#!/bin/sh
# Regenerate the committed ABI baseline abi/libgmem.abi from a build's
# libgmem.so (docs/api-stability.md says when). One command:
#   scripts/abi-baseline.sh [BUILD_DIR]      (default: build)
# It builds the library there first (configuring it if needed, with the
# default RelWithDebInfo: abidw needs the debug information).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
command -v abidw >/dev/null || {
	echo "abidw missing: install abigail-tools (scripts/install-deps.sh)" >&2
	exit 1
}
[ -f "$build/CMakeCache.txt" ] || cmake -S "$src" -B "$build"
cmake --build "$build" --target gmem
so=$(find "$build/lib" -name 'libgmem.so.*.*.*' | head -1)
. "$src/scripts/abi-flags.sh"
gm_abidw "$so" "$src/abi/libgmem.abi"
echo "wrote abi/libgmem.abi from $so; commit it with the change that needs it"
