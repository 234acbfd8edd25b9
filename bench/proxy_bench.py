#!/usr/bin/python3
"""Reverse proxy benchmark: `rill serve --proxy` against HAProxy and nghttpx in one run (issue: the
reverse proxy), the same HTTP/1.1 keep-alive backend (nginx) behind each.

Small GETs, an h2 front (TLS, ALPN h2) to an HTTP/1.1 keep-alive backend: the proxy's CPU per
request, user and system apart, from its own /proc accounting around an h2load run. Each proxy
runs one worker pinned to CPU 0; the backend and h2load share CPU 1. Every round visits the
proxies in turn; medians are reported.

rill runs twice: as configured by default (no pipelining to the backend) and with
`--proxy-pipeline N` (bodiless GETs of one loop turn sent together on one backend connection);
neither HAProxy nor nghttpx pipelines to a backend.

usage: bench/proxy_bench.py [--rill PATH] [--rounds N] [--requests N] [--pipeline N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_bench as sb  # noqa: E402


start = sb.start_pinned
stop = sb.stop_process


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rill", default=os.path.join(os.path.dirname(__file__), "..", "build-bench", "rill"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--pipeline", type=int, default=16, help="rill-pipe's --proxy-pipeline")
    a = ap.parse_args()
    rill = os.path.abspath(a.rill)
    for tool in ("nginx", "h2load"):
        if not shutil.which(tool):
            sys.exit(f"proxy_bench: {tool} is needed (make bench installs it)")
    work = tempfile.mkdtemp(prefix="rill-proxy-bench-")
    root = os.path.join(work, "root")
    os.mkdir(root)
    with open(os.path.join(root, "5b.txt"), "wb") as f:
        f.write(b"hello")
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    pem = os.path.join(work, "both.pem")
    with open(pem, "w") as f:
        f.write(open(cert).read() + open(key).read())
    # the backend: nginx, HTTP/1.1 keep-alive, one worker on CPU 1
    bport = sb.free_port()
    nconf = os.path.join(work, "nginx.conf")
    with open(nconf, "w") as f:
        f.write(f"worker_processes 1; daemon off; pid {work}/nginx.pid; error_log {work}/nginx.err;\n"
                f"events {{ worker_connections 4096; }}\n"
                f"http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 300s;\n"
                f"  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};\n"
                f"  uwsgi_temp_path {work}; scgi_temp_path {work};\n"
                f"  server {{ listen 127.0.0.1:{bport}; root {root}; }} }}\n")
    backend = start(["nginx", "-c", nconf, "-p", work], bport, cpu="1")
    proxies = {}

    def make(name, port):
        if name in ("rill", "rill-pipe"):
            extra = ["--proxy-pipeline", str(a.pipeline)] if name == "rill-pipe" else []
            return [rill, "serve", "--threads", "1", "--listen", "none", "--tls-listen",
                    f"127.0.0.1:{port}", "--cert", cert, "--key", key, "--proxy",
                    f"/=http://127.0.0.1:{bport}"] + extra
        if name == "haproxy":
            conf = os.path.join(work, "haproxy.cfg")
            with open(conf, "w") as f:
                f.write(f"global\n  nbthread 1\n  maxconn 4096\n"
                        f"defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n"
                        f"  timeout server 60s\n  http-reuse always\n"
                        f"frontend fe\n  bind 127.0.0.1:{port} ssl crt {pem} alpn h2,http/1.1\n"
                        f"  default_backend be\n"
                        f"backend be\n  server s1 127.0.0.1:{bport}\n")
            return ["haproxy", "-db", "-f", conf]
        if name == "nghttpx":
            return ["nghttpx", f"--frontend=127.0.0.1,{port}", f"--backend=127.0.0.1,{bport}",
                    "--workers=1", "--no-ocsp", "--no-via", f"--pid-file={work}/nghttpx.pid",
                    f"--errorlog-file={work}/nghttpx.err", "--accesslog-file=/dev/null", key, cert]
        raise ValueError(name)

    names = [n for n in ("rill", "rill-pipe", "haproxy", "nghttpx")
             if n.startswith("rill") or shutil.which(n)]
    try:
        for name in names:
            port = sb.free_port()
            proc = start(make(name, port), port)
            ok, _ = sb.h2load(f"https://127.0.0.1:{port}/5b.txt", 16, 16, 5000)
            if not ok:
                print(f"{name}: the warm-up failed, left out", file=sys.stderr)
                stop(proc)
                continue
            proxies[name] = (proc, port)
        res = {n: {"u": [], "s": []} for n in proxies}
        for _ in range(a.rounds):
            for name, (proc, port) in proxies.items():
                u0, s0 = sb.cpu_split(proc.pid)
                ok, _ = sb.h2load(f"https://127.0.0.1:{port}/5b.txt", 16, 16, a.requests)
                u1, s1 = sb.cpu_split(proc.pid)
                if ok:
                    res[name]["u"].append((u1 - u0) / ok * 1e6)
                    res[name]["s"].append((s1 - s0) / ok * 1e6)
    finally:
        for proc, _ in proxies.values():
            stop(proc)
        stop(backend)
        shutil.rmtree(work, ignore_errors=True)
    print(f"CPU: {sb.cpu_model()}; proxy on CPU 0, nginx backend and h2load on CPU 1; "
          f"medians of {a.rounds} rounds of {a.requests} requests")
    print("small GETs, h2 front (TLS), HTTP/1.1 keep-alive backend, proxy CPU per request:")
    med = {}
    for name in proxies:
        if res[name]["u"]:
            u, s = statistics.median(res[name]["u"]), statistics.median(res[name]["s"])
            med[name] = u + s
            print(f"  {name:9} user {u:6.2f} us  system {s:6.2f} us  total {u + s:6.2f} us")
    for mine in ("rill", "rill-pipe"):
        for peer, goal in (("nghttpx", 0.5), ("haproxy", 0.75)):
            if mine in med and peer in med:
                print(f"{mine}/{peer} proxy CPU per request: {med[mine] / med[peer]:.2f}x "
                      f"(goal <= {goal}x)")


if __name__ == "__main__":
    main()
