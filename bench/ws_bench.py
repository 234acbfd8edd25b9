#!/usr/bin/python3
"""WebSocket echo benchmark: rill (over HTTP/2 streams and over HTTP/1.1) against Node's `ws`
(npm) in one run. Each server gets one CPU (taskset 0; rill with one worker thread), the load
generator (load_ws_echo) the other. Reports echoed messages per second and messages per second
per server CPU core, from the server's own /proc accounting.

usage: bench/ws_bench.py BUILD_DIR [--seconds N]"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from server_bench import cpu_seconds, wait_port, free_port  # noqa: E402


def ensure_node_ws(workdir):
    mods = os.path.join(workdir, "node_modules")
    if not os.path.isdir(os.path.join(mods, "ws")):
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", workdir,
                        "ws@8"], check=True, timeout=300)
    return mods


def run_client(build, mode, port, path, sockets, size, seconds):
    out = subprocess.run(["taskset", "-c", "1", os.path.join(build, "bench", "load_ws_echo"), mode,
                          f"127.0.0.1:{port}", path, str(sockets), str(size), str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rill-wsbench-")
    mods = ensure_node_ws(work)

    rill_port = free_port()
    rill = subprocess.Popen(["taskset", "-c", "0", os.path.join(a.build, "rill"), "serve", "--threads",
                             "1", "--listen", f"127.0.0.1:{rill_port}", "--tls-listen", "none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    node = subprocess.Popen(["taskset", "-c", "0", "node", os.path.join(HERE, "ws_node_echo.js")],
                            stdout=subprocess.PIPE, env={**os.environ, "NODE_PATH": mods})
    node_port = int(node.stdout.readline())
    wait_port(rill_port, rill)
    results = []
    try:
        cases = [("rill", "h2", rill, rill_port), ("rill", "h1", rill, rill_port),
                 ("ws (node)", "h1", node, node_port)]
        for size, sockets in ((32, 64), (65536, 16)):
            for name, mode, proc, port in cases:
                c0 = cpu_seconds(proc.pid)
                r = run_client(a.build, mode, port, "/ws/echo", sockets, size, a.seconds)
                c1 = cpu_seconds(proc.pid)
                cpu = max(c1 - c0, 1e-9)
                results.append((size, sockets, name, "HTTP/2 streams" if mode == "h2" else "HTTP/1.1",
                                r["echoed"] / r["seconds"], r["echoed"] / cpu))
    finally:
        for p in (rill, node):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=20)
    print(f"\n{'message':>8} {'sockets':>7}  {'server':10} {'transport':15} {'msgs/s':>12} "
          f"{'msgs/s per CPU core':>20}")
    for size, sockets, name, transport, rate, per_core in results:
        print(f"{size:>8} {sockets:>7}  {name:10} {transport:15} {rate:>12.0f} {per_core:>20.0f}")
    for size in (32, 65536):
        row = {(n, t): pc for s, _, n, t, _, pc in results if s == size}
        base = row.get(("ws (node)", "HTTP/1.1"))
        for t in ("HTTP/2 streams", "HTTP/1.1"):
            if base and ("rill", t) in row:
                print(f"rill over {t}, {size}-byte messages: {row[('rill', t)] / base:.2f}x ws's "
                      f"messages per CPU core")


if __name__ == "__main__":
    main()
