# Sourced by abi-baseline.sh and abi-check.sh (with $src the source tree):
# gm_abidw SO OUT writes libgmem's ABI as abidw reads it. Public types are
# those defined in include/gmem; the others (struct gm_store, ...) are opaque
# to programs and left out. No source locations and no absolute paths, so
# that editing a header's comments or building elsewhere changes nothing.
gm_abidw() {
	abidw --no-corpus-path --no-comp-dir-path --no-show-locs \
		--headers-dir "$src/include/gmem" --drop-private-types \
		--exported-interfaces-only --out-file "$2.tmp" "$1"
	sed "s|path='$src/|path='|" "$2.tmp" >"$2"
	rm -f "$2.tmp"
}
