#!/bin/sh
# Tests of the gmem command-line tool.
# Usage: test_cli.sh GMEM [usage | caps | walkthrough BACKING]
# (no section: all of them). Prints each check; exit 1 on any mismatch,
# 77 when a walkthrough's backing is not available on this machine.
set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 GMEM [usage | caps | walkthrough BACKING]" >&2
	exit 2
fi
gmem=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmem-cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0

ok() {
	echo "ok:   $*"
}

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# run NAME ARGS...: run gmem, keep stdout/stderr in $tmp/NAME.{out,err},
# set $rc.
run() {
	name=$1
	shift
	"$gmem" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	rc=$?
}

show() {
	sed 's/^/      | /' "$tmp/$1.out" "$tmp/$1.err"
}

# expect_usage_error NAME WORD ARGS...: exit 2, stderr names WORD and hints.
expect_usage_error() {
	name=$1
	word=$2
	shift 2
	run "$name" "$@"
	if [ "$rc" -ne 2 ]; then
		fail "gmem $* exits $rc, expected 2"
		show "$name"
	elif ! grep -qF -- "$word" "$tmp/$name.err" ||
		! grep -q -- "--help" "$tmp/$name.err"; then
		fail "gmem $*: stderr does not name '$word' and give a hint"
		show "$name"
	elif [ -s "$tmp/$name.out" ]; then
		fail "gmem $*: printed on stdout"
	else
		ok "gmem $* exits 2: $(head -1 "$tmp/$name.err")"
	fi
}

test_usage() {
	run help --help
	if [ "$rc" -eq 0 ] && grep -q '^Usage: gmem' "$tmp/help.out"; then
		ok "gmem --help exits 0 and prints the usage"
	else
		fail "gmem --help exits $rc"
		show help
	fi
	run help2 caps --help
	if [ "$rc" -eq 0 ] && grep -q '^Usage: gmem' "$tmp/help2.out"; then
		ok "gmem caps --help exits 0"
	else
		fail "gmem caps --help exits $rc"
	fi
	expect_usage_error noarg "no command"
	expect_usage_error badopt "--bogus" --bogus
	expect_usage_error badshort "-x" -x
	expect_usage_error badcmd "frob" frob
	expect_usage_error capsopt "--jsn" caps --jsn
	expect_usage_error capsarg "extra" caps extra
	expect_usage_error nobacking "--backing" walkthrough --backing
	expect_usage_error badbacking "nvme" walkthrough --backing nvme
	expect_usage_error badsize "12Q" walkthrough --size 12Q
	expect_usage_error oddsize "1000" walkthrough --size 1000
}

# The JSON of gmem caps, against what the machine says.
check_caps_json() {
	python3 - "$tmp/caps.out" <<'PYEOF'
import json, os, re, sys

fails = 0
def check(cond, what):
    global fails
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        fails += 1

try:
    with open(sys.argv[1]) as f:
        caps = json.load(f)
except ValueError as e:
    print("FAIL: gmem caps --json is not valid JSON: %s" % e)
    sys.exit(1)
check(isinstance(caps, dict), "gmem caps --json is a JSON object")

types = {
    "kvm": bool, "kvm_api_version": int, "guest_memfd": bool,
    "guest_memfd_flags": int, "user_memory2": bool,
    "memory_fault_info": bool, "memory_attributes": int, "vm_types": int,
    "pre_fault_memory": bool, "nr_hugetlb": int, "hugetlb": list,
    "thp_enabled": str, "thp_shmem": str, "userfaultfd": bool,
    "max_map_count": int, "guest_memfd_huge_pages": bool,
}
for k, t in types.items():
    check(k in caps and type(caps[k]) is t,
          "key %s present, of type %s" % (k, t.__name__))
extra = set(caps) - set(types)
check(not extra, "no unexpected keys" + (": " + ", ".join(sorted(extra)) if extra else ""))
if fails:
    sys.exit(1)

dev = "/dev/kvm"
usable = os.path.exists(dev) and os.access(dev, os.R_OK | os.W_OK)
check(caps["kvm"] == usable,
      "kvm is %s: /dev/kvm %s" % (str(caps["kvm"]).lower(),
      "exists and is usable" if usable else
      "exists but is not accessible" if os.path.exists(dev) else
      "does not exist"))
if caps["kvm"]:
    check(caps["kvm_api_version"] == 12,
          "kvm_api_version = %d" % caps["kvm_api_version"])
else:
    check(not caps["guest_memfd"] and caps["guest_memfd_flags"] == 0,
          "no KVM: no guest_memfd")
# No mainline guest_memfd flag asks for huge pages (MMAP and INIT_SHARED
# are the known ones): a kernel offering only those offers none.
if caps["guest_memfd_flags"] & ~0x3 == 0:
    check(caps["guest_memfd_huge_pages"] is False,
          "guest_memfd flags 0x%x: no huge pages" % caps["guest_memfd_flags"])

try:
    with open("/proc/sys/vm/max_map_count") as f:
        mmc = int(f.read())
except OSError:
    mmc = -1
check(caps["max_map_count"] == mmc,
      "max_map_count = %d, /proc/sys/vm/max_map_count = %d"
      % (caps["max_map_count"], mmc))

hp = "/sys/kernel/mm/hugepages"
sizes = []
if os.path.isdir(hp):
    for d in os.listdir(hp):
        m = re.fullmatch(r"hugepages-(\d+)kB", d)
        if m:
            sizes.append(int(m.group(1)) * 1024)
sizes = sorted(sizes)[:4]
got = [h["size"] for h in caps["hugetlb"]]
check(got == sizes and caps["nr_hugetlb"] == len(sizes),
      "hugetlb sizes %s match %s" % (got, hp))
for h in caps["hugetlb"]:
    d = "%s/hugepages-%dkB" % (hp, h["size"] // 1024)
    try:
        nr = int(open(d + "/nr_hugepages").read())
        check(h["nr"] == nr, "hugetlb %d kB: nr %d = %d"
              % (h["size"] // 1024, h["nr"], nr))
    except OSError:
        pass

for key, name in (("thp_enabled", "enabled"), ("thp_shmem", "shmem_enabled")):
    try:
        m = re.search(r"\[(\w+)\]",
                      open("/sys/kernel/mm/transparent_hugepage/" + name).read())
        want = m.group(1) if m else ""
    except OSError:
        want = ""
    check(caps[key] == want, "%s = '%s', sysfs says '%s'"
          % (key, caps[key], want))
sys.exit(1 if fails else 0)
PYEOF
}

test_caps() {
	run caps caps
	if [ "$rc" -eq 0 ] && grep -q '^kvm ' "$tmp/caps.out" &&
		grep -q '^vm.max_map_count ' "$tmp/caps.out"; then
		ok "gmem caps exits 0 and prints the table"
	else
		fail "gmem caps exits $rc"
		show caps
	fi
	# this kernel's guest_memfd has no huge-page flag (issue 9)
	if grep -q '^guest_memfd huge  *no (no guest_memfd flag for huge pages' \
		"$tmp/caps.out"; then
		ok "gmem caps: guest_memfd offers no huge pages"
	else
		fail "gmem caps: no line saying guest_memfd has no huge pages"
		show caps
	fi
	if ! command -v python3 >/dev/null; then
		fail "python3 is needed to check gmem caps --json"
		return
	fi
	run caps caps --json
	if [ "$rc" -ne 0 ]; then
		fail "gmem caps --json exits $rc"
		show caps
		return
	fi
	ok "gmem caps --json exits 0"
	check_caps_json || failures=$((failures + 1))
	if [ "$(auto_backing)" = "$(caps_auto_backing)" ]; then
		ok "gmem caps: auto backing $(auto_backing), as the caps say"
	else
		fail "gmem caps: auto backing '$(auto_backing)', the caps say $(caps_auto_backing)"
	fi
}

# Field of gmem caps --json.
caps_field() {
	"$gmem" caps --json | python3 -c \
		'import json, sys; print(json.dumps(json.load(sys.stdin)[sys.argv[1]]))' "$1"
}

# Which backing GM_BACKING_AUTO picks here, by the rule of lib/store.c
# applied to the caps.
caps_auto_backing() {
	if [ "$(caps_field guest_memfd)" = true ] &&
		[ $(($(caps_field guest_memfd_flags) & 3)) -eq 3 ]; then
		echo guest_memfd
	else
		echo memfd
	fi
}

# The "auto backing" line of gmem caps (gm_backing_resolve): the walkthrough
# with --backing auto must get it.
auto_backing() {
	"$gmem" caps | sed -n 's/^auto backing  *//p'
}

# expect_line NAME REGEX WHAT
expect_line() {
	if grep -Eq -- "$2" "$tmp/$1.out"; then
		ok "$3: $(grep -E -m1 -- "$2" "$tmp/$1.out" | sed 's/^ *//')"
	else
		fail "$3: no line matching /$2/"
	fi
}

test_walkthrough() {
	backing=$1
	want=$backing
	[ "$backing" = auto ] && want=$(auto_backing)
	if [ "$backing" = guest_memfd ] && [ "$(auto_backing)" != guest_memfd ]; then
		echo "skip: this machine has no guest_memfd with MMAP|INIT_SHARED"
		exit 77
	fi
	run walk walkthrough --backing "$backing" --size 16M
	if [ "$rc" -ne 0 ]; then
		fail "gmem walkthrough --backing $backing exits $rc"
		show walk
		return
	fi
	ok "gmem walkthrough --backing $backing exits 0"
	expect_line walk "backing $want \\(asked: $backing\\)" "store created"
	expect_line walk '^   gm_read\(0x[0-9a-f]+, [0-9]+\) refused: -EFAULT: .+' \
		"refusal of a private read"
	n=$(grep -Ec 'refused: -EFAULT' "$tmp/walk.out")
	if [ "$n" -eq 2 ]; then
		ok "refused twice (new store, and after converting back)"
	else
		fail "refused $n times, expected 2"
	fi
	expect_line walk '= "hello from the host" \(kept' "in-place round trip"
	expect_line walk 'all zeroes' "destructive round trip"
	expect_line walk 'then gm_convert -> private: -EBUSY: .+' "pin blocks conversion"
	expect_line walk '^   5 extent\(s\):' "extents listed"
	expect_line walk '^   requests: [0-9]+ to private, [0-9]+ to shared' "stats"
	expect_line walk 'gm_store_destroy: done' "end"
}

case ${1:-all} in
usage) test_usage ;;
caps) test_caps ;;
walkthrough)
	if [ $# -ne 2 ]; then
		echo "usage: $0 GMEM walkthrough BACKING" >&2
		exit 2
	fi
	test_walkthrough "$2"
	;;
all)
	test_usage
	test_caps
	for b in auto guest_memfd memfd; do
		if [ "$b" = guest_memfd ] && [ "$(auto_backing)" != guest_memfd ]; then
			echo "skip: walkthrough --backing guest_memfd (not available)"
			continue
		fi
		test_walkthrough $b
	done
	;;
*)
	echo "$0: unknown section '$1'" >&2
	exit 2
	;;
esac

if [ "$failures" -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
