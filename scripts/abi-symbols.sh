#!/bin/sh
# The symbols libgmem.so exports (docs/api-stability.md): exactly the
# functions the public headers declare, all gm_*, all in a version node of
# lib/libgmem.map, and the SONAME libgmem.so.MAJOR of include/gmem/version.h.
# usage: abi-symbols.sh LIBGMEM_SO [CC]
set -eu
so=$1
cc=${2:-cc}
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# Exported definitions: "name@@NODE" (the node itself shows as an A symbol).
nm -D --defined-only "$so" | awk '$2 != "A" { print $3 }' | sort >"$tmp/exported"
sed 's/@.*//' "$tmp/exported" >"$tmp/names"
[ -s "$tmp/names" ] || { echo "FAIL: $so exports nothing"; exit 1; }

# Declared functions: the headers through the preprocessor (no comments),
# every identifier gm_* followed by "(" (a function pointer type such as
# gm_revoke_fn is followed by ")").
printf '#include <gmem/gmem.h>\n#include <gmem/kvm.h>\n#include <gmem/snapshot.h>\n' |
	"$cc" -E -P -I "$src/include" -x c - |
	grep -o 'gm_[a-z0-9_]*[[:space:]]*(' |
	sed 's/[[:space:]]*($//' | sort -u >"$tmp/declared"

if ! grep -qv '^gm_' "$tmp/names"; then
	echo "ok: every exported symbol is gm_*"
else
	echo "FAIL: exported symbols outside gm_*:"
	grep -v '^gm_' "$tmp/names"
	fail=1
fi
nodes=$(sed -n 's/^\(GMEM_[0-9.]*\) *{.*/\1/p' "$src/lib/libgmem.map" | tr '\n' '|')
if grep -Evq "@@(${nodes%|})\$" "$tmp/exported"; then
	echo "FAIL: symbols outside the version nodes ${nodes%|}:"
	grep -Ev "@@(${nodes%|})\$" "$tmp/exported"
	fail=1
else
	echo "ok: every exported symbol is in a version node (${nodes%|})"
fi
if cmp -s "$tmp/names" "$tmp/declared"; then
	echo "ok: the $(wc -l <"$tmp/names") exported symbols are the functions the headers declare"
else
	echo "FAIL: exported (<) and declared in include/gmem (>) differ:"
	diff "$tmp/names" "$tmp/declared" | grep '^[<>]' || true
	fail=1
fi

major=$(sed -n 's/^#define GMEM_VERSION_MAJOR \([0-9]*\)$/\1/p' "$src/include/gmem/version.h")
soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
if [ "$soname" = "libgmem.so.$major" ]; then
	echo "ok: SONAME $soname"
else
	echo "FAIL: SONAME '$soname', want libgmem.so.$major"
	fail=1
fi
exit $fail
