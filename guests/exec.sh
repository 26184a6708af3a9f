#!/bin/sh
# gmem-vm exec against a real oracle: each program runs in the guest and
# natively, and stdout and the exit status must be the same, byte for byte.
#   exec.sh GMEM_VM HELLO BACKING
# HELLO: a static glibc program (exec_hello.c). Busybox: Debian's
# busybox-static at /bin/busybox (scripts/install-deps.sh installs it).
set -u
vm=$1 hello=$2 backing=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# same NAME STDIN PROGRAM ARGS...: compare guest and native runs
same() {
	name=$1 input=$2
	shift 2
	printf '%s' "$input" | env -i A=1 B='two words' "$vm" exec --quiet \
		--backing "$backing" -- "$@" >"$tmp/guest" 2>"$tmp/err"
	g=$?
	[ $g -eq 77 ] && exit 77
	printf '%s' "$input" | env -i A=1 B='two words' "$@" >"$tmp/native" 2>/dev/null
	n=$?
	if [ $g -ne $n ] || ! cmp -s "$tmp/guest" "$tmp/native"; then
		echo "FAIL $name: exit $g in the guest, $n natively"
		diff "$tmp/native" "$tmp/guest" | head -10
		head -20 "$tmp/err"
		fail=1
	else
		echo "ok   $name (exit $g, $(wc -c <"$tmp/guest") bytes)"
	fi
}

same hello "" "$hello" one "two three" ""
if [ -x /bin/busybox ]; then
	bb=/bin/busybox
	same echo "" $bb echo hello world
	same echo-n "" $bb echo -n no newline
	same true "" $bb true
	same false "" $bb false
	same printf "" $bb printf '%s-%05d|%x\n' abc 42 255
	same seq "" $bb seq 1 200
	same tr "some input" $bb tr a-z A-Z
	same expr "" $bb expr 6 '*' 7
	same basename "" $bb basename /a/b/c.txt .txt
	same wc-stdin "one two\nthree\n" $bb wc
	same sort-stdin "b\na\nc\n" $bb sort
	same sha256-stdin "abc" $bb sha256sum
else
	echo "FAIL: /bin/busybox missing (apt-get install busybox-static)"
	fail=1
fi

# The sandbox (--dir): file applets in the guest on $tmp/g, natively on a
# copy $tmp/n; stdout, exit status and afterwards both trees must match.
make_dir() {
	rm -rf "$tmp/g" "$tmp/n" "$tmp/victim"
	mkdir -p "$tmp/g/sub" "$tmp/victim"
	printf 'hello\nworld\n' >"$tmp/g/a.txt"
	seq 1 5000 >"$tmp/g/n.txt"
	head -c 300000 /dev/urandom >"$tmp/g/big.bin" # > the I/O area
	echo deep >"$tmp/g/sub/y"
	ln -s a.txt "$tmp/g/in"
	ln -s /etc/passwd "$tmp/g/out"
	ln -s "$tmp/victim" "$tmp/g/outdir"
	echo secret >"$tmp/victim/file"
	cp -a "$tmp/g" "$tmp/n"
}

tree() {
	(cd "$1" && find . -printf '%p %y %s %m %l\n' | LC_ALL=C sort &&
		find . -type f | LC_ALL=C sort | xargs sha256sum)
}

# fs NAME [--rw] APPLET ARGS...: compare a guest and a native run in the dir
fs() {
	name=$1
	shift
	rw=
	[ "$1" = --rw ] && rw=--rw && shift
	env -i "$vm" exec --quiet --backing "$backing" --dir "$tmp/g" $rw \
		-- $bb "$@" >"$tmp/guest" 2>"$tmp/err"
	g=$?
	(cd "$tmp/n" && env -i $bb "$@") >"$tmp/native" 2>/dev/null
	n=$?
	if [ $g -ne $n ] || ! cmp -s "$tmp/guest" "$tmp/native" ||
		[ "$(tree "$tmp/g")" != "$(tree "$tmp/n")" ]; then
		echo "FAIL fs $name: exit $g in the guest, $n natively"
		diff "$tmp/native" "$tmp/guest" | head -5
		tree "$tmp/n" >"$tmp/tree.n"
		tree "$tmp/g" >"$tmp/tree.g"
		diff "$tmp/tree.n" "$tmp/tree.g" | head -5
		head -5 "$tmp/err"
		fail=1
	else
		echo "ok   fs $name (exit $g, $(wc -c <"$tmp/guest") bytes)"
	fi
}

# refused [--rw] APPLET ARGS...: fails in the guest, prints nothing, and
# neither the sandbox nor the directory outside it changes
refused() {
	rw=
	[ "$1" = --rw ] && rw=--rw && shift
	before=$(tree "$tmp/g" && tree "$tmp/victim" && ls -a "$tmp")
	env -i "$vm" exec --quiet --backing "$backing" --dir "$tmp/g" $rw \
		-- $bb "$@" >"$tmp/guest" 2>"$tmp/err"
	g=$?
	if [ $g -eq 0 ] || [ -s "$tmp/guest" ] ||
		[ "$(tree "$tmp/g" && tree "$tmp/victim" && ls -a "$tmp")" != \
			"$before" ]; then
		echo "FAIL refused $*: exit $g, $(wc -c <"$tmp/guest") bytes out"
		head -5 "$tmp/err"
		fail=1
	else
		echo "ok   refused $*: $(head -1 "$tmp/err")"
	fi
}

if [ -x /bin/busybox ]; then
	make_dir
	fs cat cat a.txt big.bin
	fs cat-link cat in sub/y
	fs head head -7 n.txt
	fs tail tail -5 n.txt
	fs wc wc a.txt n.txt big.bin
	fs sha256sum sha256sum a.txt n.txt big.bin sub/y
	fs md5sum md5sum a.txt big.bin
	fs ls ls -ln
	fs ls-R ls -R
	fs gzip-c gzip -c big.bin
	fs missing cat nothing.txt
	fs cp --rw cp big.bin c.bin
	fs mv --rw mv c.bin sub/m.bin
	fs mkdir --rw mkdir -p x/y/z
	fs rm --rw rm -r x n.txt
	fs gzip --rw gzip big.bin
	fs gunzip --rw gunzip big.bin.gz
	fs sort-o --rw sort -r a.txt -o s.txt
	refused sort a.txt -o s.txt # read-only without --rw
	refused rm a.txt
	refused mkdir newdir
	refused mv a.txt b.txt
	for rw in "" --rw; do
		refused $rw cat ../../etc/passwd
		refused $rw cat /etc/passwd
		refused $rw cat out
		refused $rw cat outdir/file
		refused $rw cat sub/../../victim/file
		refused $rw cat /proc/self/maps
		refused $rw ls ..
	done
	refused --rw rm outdir/file
	refused --rw rm ../victim/file
	refused --rw mv a.txt ../moved
	refused --rw cp a.txt /tmp/gmem-exec-escaped
	refused --rw mkdir ../newdir
	refused --rw mkdir outdir/newdir
	[ -e /tmp/gmem-exec-escaped ] && echo "FAIL escaped copy" && fail=1
fi

# The program's memory is private: the only shared pages that are not
# hypervisor-visible (page tables, the shim's code, its start stack) are
# the shim's 16-page I/O area, and every program page is private.
env -i "$vm" exec --json --backing "$backing" -- "$hello" >/dev/null \
	2>"$tmp/json"
python3 - "$tmp/json" <<'PY' || fail=1
import json, sys
rep = json.loads(open(sys.argv[1]).readline())
m = rep["memory"]
extra = m["shared_pages"] - m["hv_visible_pages"]
print(f"private {m['private_pages']}, shared {m['shared_pages']}, "
      f"hypervisor-visible {m['hv_visible_pages']}")
if extra != 16 or rep["exit_code"] != 3:
    print(f"FAIL privacy: {extra} shared pages beyond the hypervisor-visible "
          f"ones (want the 16 of the I/O area), exit {rep['exit_code']}")
    sys.exit(1)
print("ok   privacy: only the I/O area is shared")
PY
exit $fail
