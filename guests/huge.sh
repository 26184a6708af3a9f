#!/bin/sh
# Run a command with shmem THP allowed (advise) and PAGES free hugetlb pages
# of SIZE kB (default 2048) for its run, then put the system's settings back
# (also on a signal):
#   huge.sh PAGES[:SIZE_KB] CMD...
# Not root: exit 77 (skip), the settings cannot be changed here. If the
# kernel cannot find the pages (1 GiB pages need that much contiguous free
# memory): exit 77 too, saying so.
set -u
pages=${1%%:*}
size=2048
case $1 in *:*) size=${1#*:} ;; esac
shift
[ "$(id -u)" = 0 ] || { echo "huge.sh: not root: skip" >&2; exit 77; }
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
dir=/sys/kernel/mm/hugepages/hugepages-${size}kB
[ -d "$dir" ] || { echo "huge.sh: no ${size} kB huge pages here: skip" >&2; exit 77; }
old_thp=$(sed 's/.*\[\(.*\)\].*/\1/' "$thp")
old_nr=$(cat "$dir/nr_hugepages")
restore() {
	echo "$old_thp" >"$thp"
	echo "$old_nr" >"$dir/nr_hugepages"
}
trap restore EXIT
trap 'exit 130' INT TERM HUP
case $old_thp in never | deny) echo advise >"$thp" ;; esac
echo $((old_nr + pages)) >"$dir/nr_hugepages"
if [ "$(cat "$dir/free_hugepages")" -lt "$pages" ]; then
	echo "huge.sh: the kernel found only $(cat "$dir/free_hugepages") of" \
		"$pages free ${size} kB pages: skip" >&2
	exit 77
fi
"$@"
