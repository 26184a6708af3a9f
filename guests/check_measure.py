#!/usr/bin/env python3
"""check_measure.py GMEM_VM MEASURE_ELF BACKING: the launch digest that
`gmem-vm measure` computes equals the one the running VM reports (--json)
and the one the guest reads (memctl MEASUREMENT), for several VM options;
it changes with --vcpus, --mem, --init and with one byte of a loaded
segment, and not with a byte the loader does not load; measure needs no
/dev/kvm."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

VM, ELF, BACKING = sys.argv[1], sys.argv[2], sys.argv[3]
HEX = re.compile(r"^[0-9a-f]{64}$")


def measure(elf, opts, prefix=()):
    p = subprocess.run([*prefix, VM, "measure", elf, "--backing", BACKING,
                        *opts], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, (opts, p.returncode, p.stderr)
    d = p.stdout.strip()
    assert HEX.match(d), p.stdout
    return d


def run(opts):
    p = subprocess.run([VM, "run", ELF, "--backing", BACKING, "--json",
                        *opts], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode == 77:
        sys.exit(77)
    assert p.returncode == 0, (opts, p.returncode, p.stderr)
    assert "measure: done" in p.stderr, p.stderr
    reported = json.loads(p.stdout)["launch_digest"]
    read = re.search(r"launch digest: ([0-9a-f]{64})", p.stderr).group(1)
    return reported, read


def loaded_and_unloaded_offsets(path):
    """A file offset inside a PT_LOAD segment's file bytes, and one in the
    section header table (never loaded)."""
    with open(path, "rb") as f:
        b = f.read()
    phoff, shoff = struct.unpack_from("<QQ", b, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", b, 0x36)
    for i in range(phnum):
        ptype, flags, off, _, _, filesz = struct.unpack_from(
            "<IIQQQQ", b, phoff + i * phentsize)
        if ptype == 1 and filesz > 16:
            return off + filesz // 2, shoff + 64 + 4
    raise AssertionError("no PT_LOAD with file bytes")


digests = {}
for opts in ([], ["--vcpus", "2"], ["--mem", "128M"], ["--init", "shared"]):
    m = measure(ELF, opts)
    reported, read = run(opts)
    assert m == reported == read, (opts, m, reported, read)
    assert measure(ELF, opts) == m, "measure is not deterministic"
    print(f"ok: {' '.join(opts) or 'defaults'}: measure = report = guest "
          f"= {m}")
    digests[" ".join(opts)] = m
assert len(set(digests.values())) == len(digests), digests
print("ok: --vcpus, --mem and --init each change the digest")

base = digests[""]
tmp = tempfile.mkdtemp()
try:
    inside, outside = loaded_and_unloaded_offsets(ELF)
    for off, changes in ((inside, True), (outside, False)):
        copy = os.path.join(tmp, "guest.elf")
        shutil.copyfile(ELF, copy)
        with open(copy, "r+b") as f:
            f.seek(off)
            c = f.read(1)
            f.seek(off)
            f.write(bytes([c[0] ^ 0x01]))
        d = measure(copy, [])
        assert (d != base) == changes, (off, changes, d, base)
        print(f"ok: one byte at file offset {off:#x} "
              f"{'changes' if changes else 'does not change'} the digest")
finally:
    shutil.rmtree(tmp)

p = subprocess.run([VM, "measure", ELF], stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True)
assert p.returncode == 122 and "--backing" in p.stderr, (p.returncode,
                                                         p.stderr)
print("ok: measure without --backing is a usage error")

# With an empty /dev (no /dev/kvm) in a private mount namespace, if allowed.
hide = ["unshare", "-m", "sh", "-c",
        'mount -t tmpfs none /dev && exec "$0" "$@"']
probe = subprocess.run([*hide, "true"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
if probe.returncode == 0:
    assert measure(ELF, [], prefix=hide) == base
    print("ok: measure with no /dev/kvm gives the same digest")
else:
    print("note: cannot hide /dev here (unshare -m refused); not checked")
