#!/usr/bin/env bash
# `make bench`: every benchmark, each printing rill and its named peers side by side in one run.
set -euo pipefail
build=${1:-build-bench}
shopt -s nullglob
# one program per bench/bench_*.c source (stale binaries of removed benchmarks are skipped)
for src in "$(dirname "$0")"/bench_*.c; do
    b="$build/bench/$(basename "$src" .c)"
    [[ -x "$b" ]] || continue
    echo "== $(basename "$b")"
    "$b"
done
echo "== server (h2load against rill, h2o, nghttpd, nginx)"
/usr/bin/python3 "$(dirname "$0")/server_bench.py" --rill "$build/rill" ${BENCH_QUICK:+--quick}
echo "== client (rill get against curl, nghttp and h2load)"
/usr/bin/python3 "$(dirname "$0")/client_bench.py" --rill "$build/rill" ${BENCH_QUICK:+--quick}
echo "== reverse proxy (rill serve --proxy against haproxy and nghttpx, one nginx backend)"
/usr/bin/python3 "$(dirname "$0")/proxy_bench.py" --rill "$build/rill" ${BENCH_QUICK:+--rounds 1 --requests 20000}
echo "== websocket echo (rill over h2 and HTTP/1.1 against Node's ws)"
/usr/bin/python3 "$(dirname "$0")/ws_bench.py" "$build" ${BENCH_QUICK:+--seconds 2}
echo "== websocket echo through the reverse proxy (rill serve --proxy against haproxy, Node's ws backend)"
/usr/bin/python3 "$(dirname "$0")/proxy_ws_bench.py" "$build" ${BENCH_QUICK:+--seconds 2 --idle 200}
