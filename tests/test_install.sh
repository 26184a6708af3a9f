#!/bin/sh
# cmake --install into a scratch prefix, then build and run a program
# against the installed library through pkg-config (gmem.pc).
# usage: test_install.sh BUILD_DIR
set -eu
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/gmem/gmem.h include/gmem/kvm.h include/gmem/version.h \
	bin/gmem; do
	[ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
# The KVM uAPI definitions are the library's own business.
if [ -n "$(find "$prefix" -name 'kvm-uapi.h')" ]; then
	echo "FAIL: kvm-uapi.h installed"
	exit 1
fi
pc=$(find "$prefix" -name gmem.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: gmem.pc not installed"; exit 1; }
echo "ok: installed headers, gmem, $(basename "$(dirname "$pc")")/gmem.pc"

# The shared library: the real file, the SONAME link, the link for -lgmem.
major=$(sed -n 's/^#define GMEM_VERSION_MAJOR \([0-9]*\)$/\1/p' \
	"$prefix/include/gmem/version.h")
libdir=$(dirname "$(dirname "$pc")")
for f in libgmem.so "libgmem.so.$major"; do
	[ -L "$libdir/$f" ] || { echo "FAIL: $f is not a link in $libdir"; exit 1; }
done
real=$(readlink -f "$libdir/libgmem.so")
soname=$(readelf -d "$real" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libgmem.so.$major" ] ||
	{ echo "FAIL: SONAME '$soname', want libgmem.so.$major"; exit 1; }
[ -z "$(find "$prefix" -name '*.a')" ] || { echo "FAIL: a static library installed"; exit 1; }
echo "ok: $(basename "$real") with SONAME $soname and its links"
# Installed programs find the library next to them (RPATH $ORIGIN/../lib).
env -u LD_LIBRARY_PATH "$prefix/bin/gmem" --help >/dev/null ||
	{ echo "FAIL: the installed gmem does not run"; exit 1; }
echo "ok: the installed gmem runs"

export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir gmem)
case $(readlink -f "$libdir") in
"$(readlink -f "$prefix")"/*) ;;
*) echo "FAIL: gmem.pc points at $libdir, outside $prefix"; exit 1 ;;
esac
cat >"$prefix/use.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <gmem/gmem.h>

int main(void)
{
	struct gm_store_opts o = { .sz = sizeof(o), .size = 1 << 20,
				   .backing = GM_BACKING_MEMFD, .vm_fd = -1 };
	struct gm_store *s;
	char c;

	if (gm_store_create(&o, &s))
		return 1;
	if (gm_read(s, 0, &c, 1) != -EFAULT)
		return 2;
	if (gm_convert(s, 0, 4096, GM_ATTR_SHARED, 0) || gm_read(s, 0, &c, 1))
		return 3;
	gm_store_destroy(s);
	if (gm_version() != GMEM_VERSION)
		return 4;
	printf("installed libgmem %s works\n", gm_version_string());
	return 0;
}
C
# shellcheck disable=SC2046
cc -o "$prefix/use" "$prefix/use.c" $(pkg-config --cflags --libs gmem) \
	${GMEM_TEST_LDFLAGS:-}
LD_LIBRARY_PATH=$libdir "$prefix/use"
echo "ok: a program built with pkg-config --cflags --libs gmem ran"
