#!/bin/sh
# Fail if any C source differs from .clang-format (Linux kernel style).
set -e
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format missing" >&2; exit 1; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
[ -z "$files" ] && exit 0
if ! echo "$files" | xargs clang-format --dry-run --Werror 2>/tmp/gmem-format.$$; then
	head -40 /tmp/gmem-format.$$ >&2
	rm -f /tmp/gmem-format.$$
	echo "clang-format: the files above are not formatted (make format)" >&2
	exit 1
fi
rm -f /tmp/gmem-format.$$
echo "clang-format: ok"
