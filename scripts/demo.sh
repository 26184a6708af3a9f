#!/bin/sh
# make demo: what this machine offers, then a narrated tour of the store API.
# Usage: scripts/demo.sh BUILD_DIR
set -e
if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
build=$1
gmem=$build/tools/gmem
if [ ! -x "$gmem" ]; then
	echo "demo: $gmem not found; build first (make build)" >&2
	exit 1
fi

echo "== gmem caps: what this machine offers"
"$gmem" caps
echo
echo "== gmem walkthrough: the store API, step by step"
"$gmem" walkthrough

echo
echo "== gmem-vm: a real KVM guest keeps a secret, shares a buffer, does I/O"
echo "   through a device, converts back; then the VMM's closing report"
echo "   (add --json for the same report machine-readably)"
rc=0
"$build/vmm/gmem-vm" run "$build/guests/demo.elf" --mem 64M || rc=$?
if [ "$rc" -eq 77 ]; then
	echo "demo: /dev/kvm is absent here: the guest part was skipped"
elif [ "$rc" -ne 0 ]; then
	echo "demo: gmem-vm exited with $rc" >&2
	exit "$rc"
fi

echo
echo "== gmem-vm on 2 MiB transparent huge pages: the same guest; the report"
echo "   says how much of its memory is on huge pages and, where KVM's debugfs"
echo "   is mounted, how much KVM maps at 2 MiB. guests/huge.sh allows shmem"
echo "   THP for the run and puts the system's setting back after."
if [ "$rc" -eq 77 ]; then
	echo "demo: /dev/kvm is absent here: the huge-page guest was skipped"
elif [ "$(id -u)" -ne 0 ]; then
	echo "demo: not root: the THP setting cannot be set, huge-page guest skipped"
else
	here=$(dirname "$0")
	"$here/../guests/huge.sh" 0 "$build/vmm/gmem-vm" run \
		"$build/guests/demo.elf" --mem 64M --page-size 2m-thp || {
		rc=$?
		echo "demo: gmem-vm on 2m-thp exited with $rc" >&2
		exit "$rc"
	}
fi
