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
