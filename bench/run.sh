#!/usr/bin/env bash
# `make bench`: every benchmark, each printing rill and its named peers side by side in one run.
set -euo pipefail
build=${1:-build-bench}
shopt -s nullglob
for b in "$build"/bench/bench_*; do
    [[ -x "$b" ]] || continue
    echo "== $(basename "$b")"
    "$b"
done
echo "== server (h2load against rill, h2o, nghttpd, nginx)"
/usr/bin/python3 "$(dirname "$0")/server_bench.py" --rill "$build/rill" ${BENCH_QUICK:+--quick}
echo "== websocket echo (rill over h2 and HTTP/1.1 against Node's ws)"
/usr/bin/python3 "$(dirname "$0")/ws_bench.py" "$build" ${BENCH_QUICK:+--seconds 2}
