#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Snapshot and restore of a running VM, end to end on one backing.

check_snapshot.py GMEM_VM SNAPSHOT_ELF SNAPSHOT_SIGNAL_ELF BACKING

run -> snapshot file (and no .tmp left); the guest's private secret is not
in the file (its shared marker is); restore -> the guest checks its memory
and exits 0 (key from a file and from GMEM_SNAPSHOT_KEY); a byte flipped in
the header, the VM state, the memory records or at the end, a truncated
file, another format version, a wrong or missing key, a mismatching option:
restore fails with a clear message and the guest never runs; a write that
fails part way leaves no file; a snapshot that lets the VM go on; the
request refused without --snapshot; SIGUSR1 snapshot of a running guest
with two vCPUs, restored.
"""
import os
import signal
import struct
import subprocess
import sys
import tempfile

VM, GUEST, GUEST_SIGNAL, BACKING = sys.argv[1:5]
SKIP = 77
HEADER = 48
TAG = 16
failures = []


def run(args, env=None, timeout=120):
    e = dict(os.environ)
    e.pop("GMEM_SNAPSHOT_KEY", None)
    e.update(env or {})
    p = subprocess.run([VM] + args, capture_output=True, text=True,
                       env=e, timeout=timeout)
    if p.returncode == SKIP:
        print("skip:", p.stderr.strip())
        sys.exit(SKIP)
    return p


def check(cond, what, p=None):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
        if p is not None:
            print("  rc", p.returncode, "\n  stdout:", p.stdout[-2000:],
                  "\n  stderr:", p.stderr[-2000:])


def formula(base, mult, mem_mib=64, n=48):
    return bytes(base + (i * mult + mem_mib) % 26 for i in range(n))


SECRET = formula(ord("A"), 7)
MARKER = formula(ord("a"), 5)


def restore_ok(path, what, args=(), env=None):
    p = run(["restore", path, "--quiet"] + list(args), env=env)
    check(p.returncode == 0 and "snapshot: restored" in p.stdout and
          "all memory checked" in p.stdout, what, p)


def restore_fails(path, what, pattern, args=("--key-file",), env=None):
    a = ["restore", path, "--quiet"] + list(args)
    p = run(a, env=env)
    check(p.returncode == 121 and "snapshot: restored" not in p.stdout and
          "memory checked" not in p.stdout and pattern in p.stderr,
          f"{what}: want exit 121 and '{pattern}', no guest output", p)


def main():
    d = tempfile.mkdtemp(prefix="gmvm-snap-")
    key = os.path.join(d, "key")
    with open(key, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(key, 0o600)
    wrong = os.path.join(d, "wrong")
    with open(wrong, "wb") as f:
        f.write(os.urandom(32))
    kf = ["--key-file", key]
    common = ["--backing", BACKING, "--quiet"]

    # run -> snapshot, the VM stops
    snap = os.path.join(d, "snap")
    p = run(["run", GUEST, "--snapshot", snap, "--snapshot-exit"] + kf +
            common)
    check(p.returncode == 0 and os.path.exists(snap) and
          not os.path.exists(snap + ".tmp") and
          "memory checked" not in p.stdout, "run --snapshot-exit", p)
    if not os.path.exists(snap):
        sys.exit(1)
    data = open(snap, "rb").read()
    check(SECRET not in data, "the private secret is in the snapshot")
    check(MARKER in data, "the shared marker is not in the snapshot "
          "(the search would prove nothing)")

    restore_ok(snap, "restore (key file)", kf)
    restore_ok(snap, "restore (GMEM_SNAPSHOT_KEY)",
               env={"GMEM_SNAPSHOT_KEY": open(key).read().strip()})

    # any byte flipped: header, VM state, memory records, end
    state_len = struct.unpack_from("<I", data, 16)[0]
    stream = HEADER + state_len + TAG
    offsets = {
        "magic": 0, "header flags": 20, "header nonce": 30,
        "header reserved": 40, "VM state": HEADER + 5,
        "VM state middle": HEADER + state_len // 2,
        "VM state tag": stream - 3, "store header": stream + 9,
        "store extents": stream + 100, "first page": stream + 2000,
        "middle": len(data) // 2, "store end record": len(data) - 50,
        "file MAC": len(data) - 1,
    }
    for what, off in offsets.items():
        bad = bytearray(data)
        bad[off] ^= 0x40
        path = os.path.join(d, "flipped")
        open(path, "wb").write(bad)
        restore_fails(path, f"byte flipped ({what}, offset {off})",
                      "restore", kf)
    bad = bytearray(data)
    struct.pack_into("<I", bad, 8, 2)
    open(os.path.join(d, "v2"), "wb").write(bad)
    restore_fails(os.path.join(d, "v2"), "another version",
                  "snapshot format version 2", kf)
    for cut in (0, 20, HEADER + 10, stream + 10, len(data) // 2,
                len(data) - 32, len(data) - 1):
        path = os.path.join(d, "cut")
        open(path, "wb").write(data[:cut])
        restore_fails(path, f"truncated at {cut}", "restore", kf)
    path = os.path.join(d, "longer")
    open(path, "wb").write(data + b"\0")
    restore_fails(path, "a byte appended", "bytes after the file's MAC", kf)

    # keys
    restore_fails(snap, "wrong key", "does not authenticate",
                  ["--key-file", wrong])
    restore_fails(snap, "missing key", "no snapshot key", [])
    restore_fails(snap, "missing key file", "--key-file",
                  ["--key-file", os.path.join(d, "absent")])
    restore_fails(snap, "bad GMEM_SNAPSHOT_KEY", "GMEM_SNAPSHOT_KEY", [],
                  env={"GMEM_SNAPSHOT_KEY": "abc"})
    # the shape must match what the options given say
    restore_fails(snap, "other --mem", "--mem 128 MiB does not match",
                  kf + ["--mem", "128M"])
    restore_fails(snap, "other --vcpus", "--vcpus 2 does not match",
                  kf + ["--vcpus", "2"])
    other = "memfd" if BACKING == "guest_memfd" else "guest_memfd"
    restore_fails(snap, "other --backing", "--backing", kf +
                  ["--backing", other])
    restore_ok(snap, "restore with matching options",
               kf + ["--mem", "64M", "--vcpus", "1", "--backing", BACKING])

    # a write that fails part way leaves no file behind
    for at in (10, HEADER + state_len // 2, 100000, len(data) - 10):
        part = os.path.join(d, f"part{at}")
        p = run(["run", GUEST, "--snapshot", part, "--snapshot-exit"] +
                kf + common, env={"GMVM_SNAPSHOT_FAIL_AT": str(at)})
        check(p.returncode == 121 and "no snapshot written" in p.stderr and
              not os.path.exists(part) and
              not os.path.exists(part + ".tmp"),
              f"failed write at {at}: exit 121, no file", p)

    # the VM goes on after the snapshot; the snapshot restores too
    snap2 = os.path.join(d, "snap2")
    p = run(["run", GUEST, "--snapshot", snap2] + kf + common)
    check(p.returncode == 0 and "snapshot: taken" in p.stdout and
          "all memory checked" in p.stdout, "run --snapshot, going on", p)
    restore_ok(snap2, "restore of a snapshot the VM went on after", kf)
    # without --snapshot (or with signal only) the request is refused
    p = run(["run", GUEST] + common)
    check(p.returncode == 0 and "snapshot: refused" in p.stdout,
          "request without --snapshot", p)
    p = run(["run", GUEST, "--snapshot", snap2, "--snapshot-on", "signal"] +
            kf + common)
    check(p.returncode == 0 and "snapshot: refused" in p.stdout,
          "request with --snapshot-on signal", p)
    p = run(["run", GUEST, "--snapshot", snap2] + common)
    check(p.returncode == 121 and "no snapshot key" in p.stderr and
          "snapshot:" not in p.stdout, "run --snapshot without a key", p)

    # SIGUSR1 to a running guest with two vCPUs
    snap3 = os.path.join(d, "snap3")
    e = dict(os.environ)
    e.pop("GMEM_SNAPSHOT_KEY", None)
    proc = subprocess.Popen([VM, "run", GUEST_SIGNAL, "--vcpus", "2",
                             "--snapshot", snap3, "--snapshot-on", "signal",
                             "--snapshot-exit"] + kf + common,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=e)
    line = proc.stdout.readline()
    check("snapshot: ready" in line, f"signal guest ready: {line!r}")
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=120)
    check(proc.returncode == 0 and os.path.exists(snap3) and
          "memory checked" not in out,
          f"SIGUSR1 snapshot: rc {proc.returncode}, {err}")
    if os.path.exists(snap3):
        p = run(["restore", snap3, "--quiet"] + kf)
        check(p.returncode == 0 and "restored after" in p.stdout and
              "all memory checked" in p.stdout, "restore of SIGUSR1 "
              "snapshot", p)
        check(SECRET not in open(snap3, "rb").read(),
              "the secret is in the SIGUSR1 snapshot")

    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)
    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("snapshot checks passed on", BACKING)


main()
