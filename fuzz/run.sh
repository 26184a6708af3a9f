#!/bin/sh
# fuzz/run.sh BINDIR SECONDS [TARGET...]: run each libFuzzer target over
# its checked-in corpus (fuzz/corpus/TARGET, every past crash is there) and
# then fuzz for SECONDS, with new inputs kept in BINDIR/corpus/TARGET.
# A crash leaves BINDIR/artifacts/TARGET-crash-*: check it into
# fuzz/corpus/TARGET/ once fixed, so that every run replays it.
set -e
bindir=$1
seconds=$2
shift 2 || { echo "usage: $0 BINDIR SECONDS [TARGET...]" >&2; exit 2; }
src=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- $(cd "$bindir" && ls fuzz_extent_map fuzz_store_ops fuzz_import fuzz_memctl 2>/dev/null)
status=0
for t in "$@"; do
	bin="$bindir/$t"
	[ -x "$bin" ] || { echo "fuzz: $bin not built" >&2; exit 1; }
	work="$bindir/corpus/$t"
	mkdir -p "$work" "$bindir/artifacts"
	echo "fuzz: $t for ${seconds}s (seeds: fuzz/corpus/$t)"
	if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	     "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
		-print_final_stats=1 -artifact_prefix="$bindir/artifacts/$t-" \
		"$work" "$src/corpus/$t" 2>"$bindir/$t.log"; then
		tail -60 "$bindir/$t.log" >&2
		echo "fuzz: $t FAILED; the input is in $bindir/artifacts/" >&2
		status=1
		continue
	fi
	grep -E "stat::number_of_executed_units|cov:" "$bindir/$t.log" | tail -2
done
exit $status
