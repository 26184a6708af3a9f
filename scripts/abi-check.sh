#!/bin/sh
# Compare a built libgmem.so with the committed baseline abi/libgmem.abi
# (abidiff, from abigail-tools). Fails on any change a program built against
# the baseline could see: a removed or changed function, a changed public
# type. Added functions pass, and so do fields appended to the sized structs
# (abi/suppressions.abignore). After an intended change, regenerate the
# baseline with scripts/abi-baseline.sh (docs/api-stability.md).
# usage: abi-check.sh LIBGMEM_SO
set -eu
so=$1
src=$(cd "$(dirname "$0")/.." && pwd)
command -v abidiff >/dev/null || {
	echo "FAIL: abidiff missing: install abigail-tools (scripts/install-deps.sh)"
	exit 1
}
if ! readelf -S "$so" | grep -q '\.debug_info'; then
	echo "SKIP: $so has no debug information (a Release build)"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$src/scripts/abi-flags.sh"
gm_abidw "$so" "$tmp/current.abi"
rc=0
abidiff --no-added-syms --suppressions "$src/abi/suppressions.abignore" \
	"$src/abi/libgmem.abi" "$tmp/current.abi" || rc=$?
if [ $rc -ne 0 ]; then
	echo "FAIL: libgmem.so's ABI differs from abi/libgmem.abi (abidiff exit $rc)."
	echo "If the change is intended and compatible, regenerate the baseline:"
	echo "  scripts/abi-baseline.sh   (see docs/api-stability.md)"
	exit 1
fi
# Report additions (not a failure).
abidiff --suppressions "$src/abi/suppressions.abignore" \
	"$src/abi/libgmem.abi" "$tmp/current.abi" >"$tmp/added" || true
grep -q 'Added function' "$tmp/added" && sed -n '/Added function/,$p' "$tmp/added"
echo "ok: libgmem.so is compatible with abi/libgmem.abi"
