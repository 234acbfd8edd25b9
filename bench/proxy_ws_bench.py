#!/usr/bin/env python3
"""WebSocket echo through a reverse proxy: rill serve --proxy against HAProxy 2.6, both with one
worker on CPU 0, the client (bench/load_ws_echo: 64 WebSockets on one HTTP/2 connection, RFC 8441,
or 64 HTTP/1.1 connections, one 32-byte message in flight each) and the backend (Node's `ws` echo,
Debian's node-ws, compression off) on CPU 1. Prints messages per second and per CPU second of
the proxy (user + system, and each per message), the proxy's system calls per message (a second,
shorter pass counted by `perf stat`, which slows system calls, so the CPU figures come from the
first pass; left out where perf cannot trace), then the proxy's memory per idle bridged WebSocket
(N extended CONNECT streams on one h2c connection, RSS before and after).

usage: python3 bench/proxy_ws_bench.py BUILD_DIR [--seconds 5] [--idle 1000]"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from server_bench import cpu_model, cpu_split, free_port, wait_port  # noqa: E402

NODE_PATH = "/usr/share/nodejs"  # Debian's node-ws


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proxy_argv(name, build, port, backend_port, work, h1_port=None):
    if name == "rill":
        return [os.path.join(build, "rill"), "serve", "--threads", "1", "--listen",
                f"127.0.0.1:{port}", "--tls-listen", "none", "--max-concurrent-streams", "5000",
                "--proxy", f"/=http://127.0.0.1:{backend_port}"]
    conf = os.path.join(work, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write("global\n  nbthread 1\n  maxconn 4096\n  tune.h2.max-concurrent-streams 2000\n"
                "defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n"
                "  timeout server 60s\n  timeout tunnel 1h\n"
                f"frontend fe\n  bind 127.0.0.1:{port} proto h2\n  bind 127.0.0.1:{h1_port}\n"
                "  default_backend be\n"
                f"backend be\n  server s1 127.0.0.1:{backend_port}\n")
    return ["haproxy", "-db", "-f", conf]


def echo_load(build, mode, port, seconds):
    out = subprocess.run(["taskset", "-c", "1", os.path.join(build, "bench", "load_ws_echo"), mode,
                          f"127.0.0.1:{port}", "/echo", "64", "32", str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    import json
    return json.loads(out.stdout)


def syscalls_per_message(build, mode, port, pid, seconds):
    """System calls the proxy makes per echoed message (perf stat on raw_syscalls:sys_enter), or
    None where perf is missing or not allowed to trace."""
    if not shutil.which("perf"):
        return None
    out = os.path.join(tempfile.gettempdir(), f"rill-proxywsbench-perf-{os.getpid()}")
    perf = subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-e", "raw_syscalls:sys_enter",
                             "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # attached before the load starts
        r = echo_load(build, mode, port, seconds)
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    try:
        with open(out) as f:
            for line in f:
                count = line.split(",")[0]
                if "sys_enter" in line and count.isdigit():
                    return int(count) / max(r["echoed"], 1)
    except OSError:  # perf could not start
        pass
    finally:
        if os.path.exists(out):
            os.unlink(out)
    return None


def idle_websockets(port, n, batch=50):
    """Opens n WebSockets (extended CONNECT streams) on one h2c connection, batch at a time (so
    the handshakes' transient memory, freed but kept by malloc, is not counted n times); returns
    the socket."""
    import h2.config
    import h2.connection
    import h2.events
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    opened, answered, sent = 0, 0, 0
    deadline = time.monotonic() + 60
    while answered < n and time.monotonic() < deadline:
        for ev in conn.receive_data(sock.recv(1 << 20)):
            if isinstance(ev, h2.events.ResponseReceived):
                answered += 1
                opened += dict(ev.headers).get(b":status") == b"200"
            elif isinstance(ev, h2.events.StreamReset):
                answered += 1
            if isinstance(ev, (h2.events.ResponseReceived, h2.events.StreamReset,
                               h2.events.RemoteSettingsChanged)):
                while sent < n and sent - answered < batch:
                    sid = conn.get_next_available_stream_id()
                    conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                                            (":scheme", "http"), (":path", f"/idle/{sent}"),
                                            (":authority", f"127.0.0.1:{port}"),
                                            ("sec-websocket-version", "13")])
                    sent += 1
        sock.sendall(conn.data_to_send())
    if opened < n:
        raise RuntimeError(f"only {opened} of {n} WebSockets opened")
    return sock


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--idle", type=int, default=1000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rill-proxywsbench-")
    node = subprocess.Popen(["taskset", "-c", "1", "node", os.path.join(HERE, "ws_node_echo.js")],
                            stdout=subprocess.PIPE, env={**os.environ, "NODE_PATH": NODE_PATH})
    backend_port = int(node.stdout.readline())
    names = [n for n in ("rill", "haproxy") if n == "rill" or shutil.which(n)]
    rows, idle = [], {}
    try:
        for name in names:
            port, h1_port = free_port(), free_port()  # HAProxy: HTTP/1.1 on a listener of its own
            errlog = open(os.path.join(work, f"{name}.err"), "wb")
            proc = subprocess.Popen(["taskset", "-c", "0", *proxy_argv(name, a.build, port,
                                                                       backend_port, work, h1_port)],
                                    stdout=subprocess.DEVNULL, stderr=errlog)
            try:
                try:
                    wait_port(port, proc)
                except RuntimeError:
                    with open(os.path.join(work, f"{name}.err"), "rb") as f:
                        raise RuntimeError(f"{name} did not start: {f.read().decode(errors='replace')}")
                for mode in ("h2", "h1"):
                    p = port if mode == "h2" or name == "rill" else h1_port
                    u0, s0 = cpu_split(proc.pid)
                    r = echo_load(a.build, mode, p, a.seconds)
                    u1, s1 = cpu_split(proc.pid)
                    n = max(r["echoed"], 1)
                    cpu = max(u1 - u0 + s1 - s0, 1e-9)
                    calls = syscalls_per_message(a.build, mode, p, proc.pid, max(a.seconds // 2, 1))
                    rows.append((name, mode, r["echoed"] / r["seconds"], r["echoed"] / cpu,
                                 (u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6, calls))
                before = rss_kib(proc.pid)
                sock = idle_websockets(port, a.idle)
                time.sleep(1)
                idle[name] = (rss_kib(proc.pid) - before) * 1024 / a.idle
                sock.close()
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    finally:
        node.kill()
        node.wait()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"\n{cpu_model()}, load average {load:.1f} (the CPU figures are per process, but a busy "
          "machine still spreads them)")
    print(f"{'proxy':8} {'front':10} {'msgs/s':>10} {'msgs per proxy CPU s':>22} {'user us/msg':>12} "
          f"{'sys us/msg':>11} {'syscalls/msg':>13}")
    for name, mode, rate, per_cpu, us, sy, calls in rows:
        print(f"{name:8} {'h2 streams' if mode == 'h2' else 'HTTP/1.1':10} {rate:>10.0f} {per_cpu:>22.0f} "
              f"{us:>12.2f} {sy:>11.2f} {'-' if calls is None else f'{calls:.2f}':>13}")
    for name, b in idle.items():
        print(f"{name}: {b:.0f} bytes of RSS per idle bridged WebSocket ({a.idle} on one h2 connection)")
    per = {(n, m): pc for n, m, _, pc, *_ in rows}
    for m in ("h2", "h1"):
        if ("haproxy", m) in per:
            print(f"rill/haproxy messages per CPU second ({m}): {per[('rill', m)] / per[('haproxy', m)]:.2f}x")


if __name__ == "__main__":
    main()
