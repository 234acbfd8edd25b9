#!/usr/bin/env bash
# Runs every benchmark program built in the given build folder; each prints ours against the
# named peer side by side.
set -euo pipefail
build=${1:-build-bench}
shopt -s nullglob
for b in "$build"/bench/bench_*; do
    [[ -x "$b" ]] || continue
    echo "== $(basename "$b")"
    "$b"
done
