#!/usr/bin/python3
"""Client benchmark: `rill get` against curl, nghttp and h2load in one run (issue: the client).

- 100 MiB from nghttpd over h2c and over TLS: throughput and the client's CPU per GiB.
- 10,000 small GETs over one HTTP/2 connection, 100 in flight, from h2o: client CPU per request.
- Client memory per idle connection: 200 rill_clients of 200 origins (127.0.0.1 ... 127.0.0.200,
  one server), each after one request and past its idle trim (bench/load_client_idle.c).

The server runs pinned to CPU 0 and the client to CPU 1. A client's CPU is its own rusage (user
and system apart, from wait4), so the figure does not depend on how fast the server or the
machine's syscalls are. Every row visits the clients in turn, round after round, and reports the
median.

usage: bench/client_bench.py [--rill PATH] [--rounds N] [--quick]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_bench as sb  # noqa: E402 (free_port, wait_port, cpu_model)

BIG_MIB = 100


def run_client(cmd, timeout=300):
    """Runs cmd pinned to CPU 1; returns (ok, wall seconds, user s, system s). The wait blocks (a
    timer kills a client that overruns): polling for the end woke this process every 5 ms, on
    one of the two CPUs the measured processes were using."""
    errf = tempfile.TemporaryFile()  # not a pipe: nobody reads it until the end
    start = time.monotonic()
    proc = subprocess.Popen(["taskset", "-c", "1", *cmd], stdout=subprocess.DEVNULL, stderr=errf)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    pid, status, ru = os.wait4(proc.pid, 0)
    killer.cancel()
    wall = time.monotonic() - start
    errf.seek(0)
    err = errf.read().decode(errors="replace")
    errf.close()
    ok = os.waitstatus_to_exitcode(status) == 0
    if not ok:
        print(f"  {cmd[0]} failed: {err.strip()[:200]}", file=sys.stderr)
    return ok, wall, ru.ru_utime, ru.ru_stime


start = sb.start_pinned
stop = sb.stop_process


def big_clients(rill, url, tls):
    k = ["-k"] if tls else []
    rill_cmd = [rill, "get", "-s", *k, "-o", "/dev/null"]
    curl_cmd = ["curl", "-s", "-f", *k, "-o", "/dev/null"]
    if not tls:
        rill_cmd.append("--http2-prior-knowledge")
        curl_cmd.append("--http2-prior-knowledge")
    else:
        curl_cmd.append("--http2")
    clients = {"rill get": rill_cmd + [url], "curl": curl_cmd + [url]}
    if shutil.which("nghttp"):
        clients["nghttp"] = ["nghttp", "-n", url]
    return clients


def small_clients(rill, url, n):
    clients = {"rill get": [rill, "get", "-s", "--http2-prior-knowledge", "-n", str(n), "-o",
                            "/dev/null", url]}
    if shutil.which("nghttp"):
        # nghttp -m repeats the URL; all of them in flight at once, as far as the server allows
        clients["nghttp"] = ["nghttp", "-n", "-m", str(n), url]
    if shutil.which("h2load"):
        clients["h2load"] = ["h2load", "-n", str(n), "-c", "1", "-m", "100", url]
    return clients


def rounds_of(clients, rounds):
    """{name: [(wall, user, sys), ...]} over the rounds, clients in turn."""
    out = {name: [] for name in clients}
    for _ in range(rounds):
        for name, cmd in clients.items():
            ok, wall, user, system = run_client(cmd)
            if ok:
                out[name].append((wall, user, system))
    return out


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rill", default=os.path.join(os.path.dirname(__file__), "..", "build-bench", "rill"))
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="fewer rounds and requests")
    a = ap.parse_args()
    rill = os.path.abspath(a.rill)
    rounds = 2 if a.quick else a.rounds
    small_n = 2000 if a.quick else 10000
    for tool in ("nghttpd", "h2o", "curl"):
        if not shutil.which(tool):
            sys.exit(f"client_bench: {tool} is needed (make bench installs it)")
    work = tempfile.mkdtemp(prefix="rill-client-bench-")
    root = os.path.join(work, "root")
    os.mkdir(root)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(BIG_MIB):
            f.write(chunk)
    with open(os.path.join(root, "5b.txt"), "wb") as f:
        f.write(b"hello")
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    print(f"CPU: {sb.cpu_model()}; server on CPU 0, client on CPU 1; medians of {rounds} rounds")
    try:
        for tls in (False, True):
            port = sb.free_port()
            cmd = ["nghttpd", "-d", root, str(port), key, cert] if tls else \
                ["nghttpd", "--no-tls", "-d", root, str(port)]
            srv = start(cmd, port)
            try:
                scheme = "https" if tls else "http"
                res = rounds_of(big_clients(rill, f"{scheme}://127.0.0.1:{port}/big.bin", tls), rounds)
            finally:
                stop(srv)
            label = "TLS" if tls else "h2c"
            print(f"\n100 MiB from nghttpd over {label}:")
            print(f"  {'client':10} {'MB/s':>8} {'user s/GiB':>11} {'sys s/GiB':>10} {'CPU s/GiB':>10}")
            gib = BIG_MIB / 1024
            for name, runs in res.items():
                if not runs:
                    print(f"  {name:10} failed")
                    continue
                mbs = med([BIG_MIB * 1.048576 / r[0] for r in runs])
                u, s = med([r[1] / gib for r in runs]), med([r[2] / gib for r in runs])
                print(f"  {name:10} {mbs:8.0f} {u:11.3f} {s:10.3f} {u + s:10.3f}")

        port = sb.free_port()
        conf = os.path.join(work, "h2o.conf")
        with open(conf, "w") as f:
            user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
            f.write(f"user: {user}\nnum-threads: 1\npid-file: {work}/h2o.pid\nerror-log: {work}/h2o.log\n"
                    f"http2-max-concurrent-requests-per-connection: 100\n"
                    f"listen:\n  host: 127.0.0.1\n  port: {port}\n"
                    f"hosts:\n  default:\n    paths:\n      /:\n        file.dir: {root}\n")
        srv = start(["h2o", "-c", conf], port)
        try:
            res = rounds_of(small_clients(rill, f"http://127.0.0.1:{port}/5b.txt", small_n), rounds)
        finally:
            stop(srv)
        print(f"\n{small_n} small GETs over one h2c connection from h2o, 100 in flight:")
        print(f"  {'client':10} {'req/s':>8} {'user us/req':>12} {'sys us/req':>11} {'CPU us/req':>11}")
        for name, runs in res.items():
            if not runs:
                print(f"  {name:10} failed")
                continue
            rps = med([small_n / r[0] for r in runs])
            u, s = med([r[1] / small_n * 1e6 for r in runs]), med([r[2] / small_n * 1e6 for r in runs])
            print(f"  {name:10} {rps:8.0f} {u:12.2f} {s:11.2f} {u + s:11.2f}")
        # memory per idle connection: one server on 0.0.0.0 answers every 127.0.0.x
        port = sb.free_port()
        conf2 = os.path.join(work, "h2o-any.conf")
        with open(conf2, "w") as f:
            f.write(f"user: {user}\nnum-threads: 1\npid-file: {work}/h2o2.pid\nerror-log: {work}/h2o2.log\n"
                    f"listen:\n  host: 0.0.0.0\n  port: {port}\n"
                    f"hosts:\n  default:\n    paths:\n      /:\n        file.dir: {root}\n")
        srv = start(["h2o", "-c", conf2], port)
        tool = os.path.join(os.path.dirname(rill), "bench", "load_client_idle")
        try:
            per = []
            for _ in range(rounds):
                out = subprocess.run([tool, str(port), "200", "/5b.txt"], capture_output=True,
                                     text=True, timeout=120).stdout
                fields = dict(zip(out.split()[::2], out.split()[1::2]))
                if fields.get("failed") == "0":
                    per.append(float(fields["per_connection_kib"]))
        finally:
            stop(srv)
        if per:
            print(f"\nclient memory per idle HTTP/2 connection (200 rill_clients of 200 origins, each "
                  f"after one request, past its idle trim; bench/load_client_idle): {med(per):.1f} KiB RSS")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
