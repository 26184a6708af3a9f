#!/bin/sh
# gmem-vm's report shows KVM's 2 MiB mappings (debugfs pages_2m) of a guest
# on 2 MiB THP: mounts debugfs for the run if it is not mounted (and unmounts
# it after), runs the guest through huge.sh (settings set and restored):
#   kvm_pages_2m.sh GMEM_VM GUEST
# Not root: exit 77 (skip), debugfs cannot be mounted here.
set -u
vm=$1
guest=$2
here=$(dirname "$0")
dbg=/sys/kernel/debug
[ "$(id -u)" = 0 ] || { echo "kvm_pages_2m.sh: not root: skip" >&2; exit 77; }
mounted=
if ! mountpoint -q "$dbg"; then
	mount -t debugfs none "$dbg" || { echo "FAIL: mounting debugfs"; exit 1; }
	mounted=1
fi
cleanup() {
	[ -z "$mounted" ] || umount "$dbg"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
if [ ! -e "$dbg/kvm/pages_2m" ]; then
	echo "kvm_pages_2m.sh: this kernel's KVM has no pages_2m stat: skip" >&2
	exit 77
fi
out=$("$here/huge.sh" 40 "$vm" run "$guest" --page-size 2m-thp 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || { echo "FAIL: gmem-vm exits $rc"; exit 1; }
line=$(echo "$out" | grep '^kvm 2m maps ')
n=$(echo "$line" | awk '{ print $4 }')
case $n in
'' | *[!0-9]*)
	echo "FAIL: the report has no KVM 2 MiB mapping count: '$line'"
	exit 1
	;;
0)
	echo "FAIL: KVM maps nothing at 2 MiB on 2m-thp: '$line'"
	exit 1
	;;
esac
echo "ok: KVM maps $n regions at 2 MiB"
