#!/bin/sh
# expect.sh CODE PATTERN... -- CMD...: run CMD; pass if it exits with CODE
# and its output (stdout and stderr) matches every extended regex PATTERN.
# A command that exits 77 (no /dev/kvm) makes the test skip.
code=$1
shift
patterns=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	patterns="$patterns
$1"
	shift
done
shift
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
[ "$rc" -eq 77 ] && exit 77
if [ "$rc" -ne "$code" ]; then
	echo "expect.sh: exit status $rc, want $code" >&2
	exit 1
fi
echo "$patterns" | while IFS= read -r p; do
	[ -z "$p" ] && continue
	if ! printf '%s\n' "$out" | grep -Eq -- "$p"; then
		echo "expect.sh: output does not match /$p/" >&2
		exit 1
	fi
done || exit 1
exit 0
