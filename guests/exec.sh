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
