#!/usr/bin/env python3
"""check_json.py GMEM_VM DEMO_ELF: the --json report of the demo guest is
valid JSON and says what the text report says."""
import json
import subprocess
import sys

p = subprocess.run([sys.argv[1], "run", sys.argv[2], "--json"],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
if p.returncode == 77:
    sys.exit(77)
assert p.returncode == 0, (p.returncode, p.stderr)
assert "guest: done" in p.stderr, "guest console goes to stderr with --json"
r = json.loads(p.stdout)
assert r["exit_code"] == 0 and not r["crashed"]
assert r["memory"]["backing"] in ("guest_memfd", "memfd")
assert r["memory"]["private_pages"] + r["memory"]["shared_pages"] == \
    r["memory"]["size"] // 4096
c = r["conversions"]
assert c["requests"] == 8 and c["done"] == 6, c
assert r["refused"]["protected_range"] == 1
assert r["refused"]["busy_pinned"] == 1
assert r["refused"]["private_buffer"] == 1
peeks = r["peeks"]
assert [pk["readable"] for pk in peeks] == [False, True, False], peeks
assert peeks[0]["status"] == -14 and peeks[0]["data"] == ""
assert "0xC0FFEE" in peeks[1]["data"]
print("json report ok")
