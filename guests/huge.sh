#!/bin/sh
# Run a command with shmem THP allowed (advise) and PAGES free 2 MiB hugetlb
# pages for its run, then put the system's settings back (also on a signal):
#   huge.sh PAGES CMD...
# Not root: exit 77 (skip), the settings cannot be changed here.
set -u
pages=$1
shift
[ "$(id -u)" = 0 ] || { echo "huge.sh: not root: skip" >&2; exit 77; }
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
old_thp=$(sed 's/.*\[\(.*\)\].*/\1/' "$thp")
old_nr=$(cat "$nr")
restore() {
	echo "$old_thp" >"$thp"
	echo "$old_nr" >"$nr"
}
trap restore EXIT
trap 'exit 130' INT TERM HUP
case $old_thp in never | deny) echo advise >"$thp" ;; esac
echo $((old_nr + pages)) >"$nr"
"$@"
