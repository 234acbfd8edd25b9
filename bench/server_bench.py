#!/usr/bin/python3
"""Server benchmark: rill against h2o, nghttpd and nginx in one run (issue: the server).

Each server runs one worker pinned to CPU 0; h2load is pinned to CPU 1. CPU per request comes from
the server's own /proc accounting (utime + stime of its whole process tree) around the h2load run,
because requests/s on a 2-core machine mostly measures h2load. Every row visits the servers in
turn, round after round, and reports the median, so a slow stretch of the VM hits them alike.

usage: bench/server_bench.py [--rill PATH] [--quick] [--only NAME,...] [--rounds N] [--requests N]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_pids(pid):
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def cpu_split(pid):
    """(user, system) CPU seconds of the process tree: a figure that only holds where syscalls are
    expensive shows up as a difference in one of them."""
    user = system = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except OSError:
            pass
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pid):
    return sum(cpu_split(pid))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def rss_bytes(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port}")


class Server:
    def __init__(self, name, work, docroot, cert, key, rill_bin):
        self.name, self.work, self.docroot = name, work, docroot
        self.cert, self.key, self.rill_bin = cert, key, rill_bin
        self.proc = None
        self.h1_port = None  # where HTTP/1.1 is served, when not on the h2c port (nginx)

    def start(self, tls):
        port = free_port()
        cmd = self.command(port, tls)
        if cmd is None:
            return None
        self.proc = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(port, self.proc)
        time.sleep(0.3)
        return port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def command(self, port, tls):
        w = self.work
        if self.name == "nghttpd":
            if tls:
                return None  # the issue's table measures nghttpd on h2c only
            return ["nghttpd", "--no-tls", "-n", "1", "-d", self.docroot, str(port)]
        if self.name == "h2o":
            conf = os.path.join(w, f"h2o-{port}.conf")
            ssl = (f"  ssl:\n    certificate-file: {self.cert}\n    key-file: {self.key}\n"
                   if tls else "")
            with open(conf, "w") as f:
                f.write(f"user: {'root' if os.geteuid() == 0 else os.environ.get('USER', 'nobody')}\nnum-threads: 1\npid-file: {w}/h2o-{port}.pid\n"
                        f"error-log: {w}/h2o-error.log\n"
                        f"listen:\n  host: 127.0.0.1\n  port: {port}\n{ssl}"
                        f"hosts:\n  default:\n    paths:\n      /:\n        file.dir: {self.docroot}\n")
            return ["h2o", "-c", conf]
        if self.name == "nginx":
            conf = os.path.join(w, f"nginx-{port}.conf")
            # a cleartext "http2" listener speaks only h2c: HTTP/1.1 gets a listener of its own
            self.h1_port = None if tls else free_port()
            listen = (f"listen 127.0.0.1:{port} ssl http2; ssl_certificate {self.cert}; "
                      f"ssl_certificate_key {self.key};" if tls else
                      f"listen 127.0.0.1:{port} http2; listen 127.0.0.1:{self.h1_port};")
            # sendfile off: on this VM nginx's sendfile path halves its large-file rate
            # (0.85 against 2.0 GB/s, measured), so nginx gets its faster setting.
            with open(conf, "w") as f:
                f.write(f"worker_processes 1; daemon off; pid {w}/nginx-{port}.pid;\n"
                        f"error_log {w}/nginx-error.log;\n"
                        f"events {{ worker_connections 4096; }}\n"
                        f"http {{ access_log off; sendfile off;\n"
                        f"  keepalive_requests 1000000; http2_max_requests 1000000;\n"
                        f"  client_body_temp_path {w}; proxy_temp_path {w}; fastcgi_temp_path {w};\n"
                        f"  uwsgi_temp_path {w}; scgi_temp_path {w};\n"
                        f"  server {{ {listen} root {self.docroot}; }} }}\n")
            return ["nginx", "-c", conf, "-p", w]
        if self.name == "rill":
            args = [self.rill_bin, "serve", "--threads", "1", "--root", self.docroot]
            if tls:
                return args + ["--listen", f"127.0.0.1:{free_port()}", "--tls-listen",
                               f"127.0.0.1:{port}", "--cert", self.cert, "--key", self.key]
            return args + ["--listen", f"127.0.0.1:{port}", "--tls-listen", "none"]
        raise ValueError(self.name)


def start_pinned(cmd, port, cpu="0"):
    """Starts a server pinned to cpu and waits until it listens on port."""
    proc = subprocess.Popen(["taskset", "-c", cpu, *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port, proc)
    time.sleep(0.3)
    return proc


def stop_process(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def h2load(url, clients, streams, requests, h1=False):
    cmd = ["taskset", "-c", "1", "h2load", *(["--h1"] if h1 else []), "-c", str(clients), "-m",
           str(streams), "-n", str(requests), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    fin = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s, ([\d.]+)([KMG]?B)/s", out)
    if not done or not fin:
        raise RuntimeError("h2load failed:\n" + out[-2000:])
    secs = float(fin.group(1)) / (1000 if fin.group(2) == "ms" else 1)
    return int(done.group(2)), secs


def read_until_settings(sock):
    """Reads frames until the server's (non-ACK) SETTINGS has arrived; False on timeout/EOF."""
    buf = b""
    while True:
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, flags = buf[3], buf[4]
            buf = buf[9 + length:]
            if ftype == 4 and not flags & 1:
                return True
        try:
            data = sock.recv(4096)
        except OSError:
            return False
        if not data:
            return False
        buf += data


def measure_idle(server, pid_port, count):
    """RSS per idle h2c connection. Each client behaves as a real one would: the preface and an
    empty SETTINGS, then a SETTINGS ACK once the server's SETTINGS arrived; then it stays idle."""
    port = pid_port
    time.sleep(0.5)
    before = rss_bytes(server.proc.pid)
    socks = []
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    ack = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(preface)
        socks.append(s)
    for s in socks:
        s.settimeout(5)
        if read_until_settings(s):
            s.sendall(ack)
    time.sleep(1.0)
    after = rss_bytes(server.proc.pid)
    for s in socks:
        s.close()
    return (after - before) / count


def measure_used_idle(server, port, count):
    """RSS per h2c connection that served one request (5b.txt) and then went idle: what a browser's
    connection costs between page loads. HPACK state and per-stream history stay with it."""
    def indexed_name(idx, value):  # literal with incremental indexing, static name, no Huffman
        return bytes([0x40 | idx, len(value)]) + value
    block = (b"\x82\x86" +  # :method GET, :scheme http
             indexed_name(1, b"localhost") + indexed_name(4, b"/5b.txt") +
             indexed_name(58, b"Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0") +
             indexed_name(19, b"text/html,application/xhtml+xml") +
             indexed_name(17, b"en-US,en;q=0.9"))
    request = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" +
               b"\x00\x00\x00\x04\x01\x00\x00\x00\x00" + len(block).to_bytes(3, "big") +
               bytes([1, 5]) + (1).to_bytes(4, "big") + block)
    time.sleep(0.5)
    before = rss_bytes(server.proc.pid)
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        socks.append(s)
    for s in socks:  # until the response ends (END_STREAM on stream 1)
        s.settimeout(5)
        buf, done = b"", False
        while not done:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                n = int.from_bytes(buf[:3], "big")
                if buf[3] in (0, 1) and buf[4] & 1 and int.from_bytes(buf[5:9], "big") == 1:
                    done = True
                buf = buf[9 + n:]
    time.sleep(1.5)  # past quiet-connection trimming (rill trims after 200 ms)
    after = rss_bytes(server.proc.pid)
    for s in socks:
        s.close()
    return (after - before) / count


def start_side_by_side(running, names, tls, label, warm_up, make_server):
    """Starts every server (idle ones cost nothing) into running {name: (server, port)} and warms
    each up; a server that fails is reported and left out, not allowed to hide the others. The
    caller stops what is in running."""
    for name in names:
        srv = make_server(name)
        try:
            port = srv.start(tls)
            if port is None:
                continue
            running[name] = (srv, port)
            warm_up(port)
        except Exception as e:
            print(f"{name} ({label}): {e}", file=sys.stderr)
            srv.stop()
            running.pop(name, None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rill", default=os.path.join(os.path.dirname(__file__), "..", "build-bench", "rill"))
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    ap.add_argument("--only", default="rill,h2o,nghttpd,nginx")
    ap.add_argument("--rounds", type=int, default=7,
                    help="rounds of small requests per server (median; this VM's runs spread +-25%%)")
    ap.add_argument("--requests", type=int, default=1000000,
                    help="small requests per round and server: /proc counts CPU in clock ticks, "
                         "so a round must cost a server many of them (1M: ~35 ticks of user time "
                         "for rill on a current Xeon; 200k gave 7, a ratio quantized to 15%%)")
    a = ap.parse_args()

    names = [n for n in a.only.split(",") if n]
    if "rill" in names:
        help_text = subprocess.run([a.rill, "serve", "--help"], capture_output=True, text=True).stdout \
            if os.path.exists(a.rill) else ""
        if "--root" not in help_text or "--threads" not in help_text:
            print(f"note: {a.rill} has no h2 server with --root/--threads yet; rill is left out")
            names.remove("rill")

    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    work = tempfile.mkdtemp(prefix="rill-bench-")
    docroot = os.path.join(work, "root")
    os.mkdir(docroot)
    with open(os.path.join(docroot, "5b.txt"), "wb") as f:
        f.write(b"hello")
    big_mib = 16 if a.quick else 100
    with open(os.path.join(docroot, "big.bin"), "wb") as f:
        f.write(os.urandom(1 << 20) * big_mib)
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)

    small_rounds = 1 if a.quick else a.rounds
    small_n = 20000 if a.quick else a.requests * small_rounds
    idle_n = 200 if a.quick else 1000
    results = {name: {} for name in names}
    rounds = 1 if a.quick else 7
    n_big = 3 if a.quick else 10
    # Small requests and the reference rows: per transport, all servers run side by side (idle
    # ones cost nothing) and each round visits every server in turn, as for the large file below,
    # so that a slow stretch of this shared VM does not fall on one server only. The median.
    for tls in (False, True):
        scheme = "https" if tls else "http"
        running = {}
        samples = {n: {"us": [], "user": [], "sys": [], "rps": [], "h1": [], "tls_big": []}
                   for n in names}
        try:
            start_side_by_side(running, names, tls, scheme,
                               lambda port: h2load(f"{scheme}://127.0.0.1:{port}/5b.txt", 32, 16, 5000),
                               lambda name: Server(name, work, docroot, cert, key, a.rill))
            for _ in range(small_rounds):
                for name, (srv, port) in running.items():
                    got = samples[name]
                    try:
                        u0, s0 = cpu_split(srv.proc.pid)
                        ok, secs = h2load(f"{scheme}://127.0.0.1:{port}/5b.txt", 32, 16,
                                          small_n // small_rounds)
                        u1, s1 = cpu_split(srv.proc.pid)
                        per = 1e6 / max(ok, 1)
                        got["us"].append((u1 - u0 + s1 - s0) * per)
                        got["user"].append((u1 - u0) * per)
                        got["sys"].append((s1 - s0) * per)
                        got["rps"].append(ok / secs)
                        if not tls and name != "nghttpd":  # reference: the large file, HTTP/1.1
                            ok, secs = h2load(f"http://127.0.0.1:{srv.h1_port or port}/big.bin", 1, 1,
                                              n_big, h1=True)
                            got["h1"].append(ok * big_mib * (1 << 20) / secs / 1e9)
                        if tls:  # reference: the large file over TLS
                            ok, secs = h2load(f"https://127.0.0.1:{port}/big.bin", 1, 1, n_big)
                            got["tls_big"].append(ok * big_mib * (1 << 20) / secs / 1e9)
                    except Exception as e:
                        print(f"{name} ({scheme}): {e}", file=sys.stderr)
        finally:
            for srv, _ in running.values():
                srv.stop()
        median = lambda v: sorted(v)[len(v) // 2]
        for name in names:
            got, r = samples[name], results[name]
            if got["us"]:
                r["tls_us" if tls else "h2c_us"] = median(got["us"])
                r["tls_user" if tls else "h2c_user"] = median(got["user"])
                r["tls_user_all" if tls else "h2c_user_all"] = got["user"]
                r["tls_sys" if tls else "h2c_sys"] = median(got["sys"])
                r["tls_rps" if tls else "h2c_rps"] = median(got["rps"])
            if got["h1"]:
                r["h1_big_gbs"] = median(got["h1"])
            if got["tls_big"]:
                r["tls_big_gbs"] = median(got["tls_big"])

    # The large file: all servers run side by side (idle ones cost nothing) and each round visits
    # every server in turn, so a noisy stretch on this shared 2-core VM hits all of them alike;
    # single runs vary by +-25%. The median of the rounds. h2load tops out near the fastest servers'
    # rate, so the server's CPU per GiB shows what each spends to reach it.
    running, rates, cpus = {}, {n: [] for n in names}, {n: [] for n in names}
    try:
        start_side_by_side(running, names, False, "large file",  # warm-up: page cache, pools
                           lambda port: h2load(f"http://127.0.0.1:{port}/big.bin", 1, 1, 1),
                           lambda name: Server(name, work, docroot, cert, key, a.rill))
        for _ in range(rounds):
            for name, (srv, port) in running.items():
                try:
                    c0 = cpu_seconds(srv.proc.pid)
                    ok, secs = h2load(f"http://127.0.0.1:{port}/big.bin", 1, 1, n_big)
                    c1 = cpu_seconds(srv.proc.pid)
                except Exception as e:
                    print(f"{name} (large file): {e}", file=sys.stderr)
                    continue
                if ok:
                    rates[name].append(ok * big_mib * (1 << 20) / secs / 1e9)
                    cpus[name].append((c1 - c0) / (ok * big_mib / 1024))
    finally:
        for srv, _ in running.values():
            srv.stop()
    for name in names:
        if rates[name]:
            results[name]["big_gbs"] = sorted(rates[name])[len(rates[name]) // 2]
            results[name]["big_all"] = rates[name]
            results[name]["big_cpu"] = sorted(cpus[name])[len(cpus[name]) // 2]

    # Idle memory: a fresh process each time, servers taken in turn; the median.
    idle, used = {n: [] for n in names}, {n: [] for n in names}
    idle_runs = 1 if a.quick else 3
    for _ in range(idle_runs):
        for name in names:
            for measure, into in ((measure_idle, idle), (measure_used_idle, used)):
                srv = Server(name, work, docroot, cert, key, a.rill)  # a fresh process each
                try:
                    port = srv.start(False)
                    if port is not None:
                        into[name].append(measure(srv, port, idle_n) / 1024)
                except Exception as e:
                    print(f"{name} idle: {e}", file=sys.stderr)
                finally:
                    srv.stop()
    for name in names:
        if idle[name]:
            results[name]["idle_kib"] = sorted(idle[name])[len(idle[name]) // 2]
            results[name]["idle_all"] = idle[name]
        if used[name]:
            results[name]["used_kib"] = sorted(used[name])[len(used[name]) // 2]

    def cell(name, key, fmt):
        v = results.get(name, {}).get(key)
        return fmt.format(v) if v is not None else "-"

    cols = names
    print(f"\n{'workload':64} " + " ".join(f"{n:>10}" for n in cols))
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores")
    rows = [(f"server CPU per request, 5 B file, h2c, 32x16 (us, median of {small_rounds})", "h2c_us", "{:.2f}"),
            ("  of which user (us)", "h2c_user", "{:.2f}"),
            ("  of which system (us)", "h2c_sys", "{:.2f}"),
            ("  requests/s (h2load, for reference)", "h2c_rps", "{:.0f}"),
            (f"server CPU per request, 5 B file, TLS h2, 32x16 (us, median of {small_rounds})", "tls_us", "{:.2f}"),
            ("  of which user (us)", "tls_user", "{:.2f}"),
            ("  of which system (us)", "tls_sys", "{:.2f}"),
            (f"{big_mib} MiB file, h2c, one connection (GB/s, median of {rounds})", "big_gbs", "{:.2f}"),
            ("  server CPU per GiB sent (s)", "big_cpu", "{:.3f}"),
            (f"{big_mib} MiB file, TLS h2, one connection (GB/s, median of {small_rounds}; reference)", "tls_big_gbs", "{:.2f}"),
            (f"{big_mib} MiB file, HTTP/1.1, one connection (GB/s, median of {small_rounds}; reference)", "h1_big_gbs", "{:.2f}"),
            (f"RSS per idle h2c connection, {idle_n} conns (KiB, median of {idle_runs})", "idle_kib", "{:.2f}"),
            (f"  the same after one request each (KiB, median of {idle_runs}; reference)", "used_kib", "{:.2f}")]
    for label, key, fmt in rows:
        print(f"{label:64} " + " ".join(f"{cell(n, key, fmt):>10}" for n in cols))
    for key, label in (("big_all", "large file, every round (GB/s)"), ("idle_all", "idle KiB, every run")):
        for n in cols:
            if results[n].get(key):
                print(f"  {label} {n}: " + " ".join(f"{v:.2f}" for v in results[n][key]))
    best = max((results[n].get("big_gbs") or 0, n) for n in names if n != "rill") if len(names) > 1 else None
    if best and "rill" in results and results["rill"].get("big_gbs"):
        print(f"rill/best peer ({best[1]}) large-file throughput: {results['rill']['big_gbs'] / best[0]:.2f}x")
    if "rill" in results and "h2o" in results:
        for key, label in (("h2c_us", "CPU/request h2c"), ("h2c_user", "user CPU/request h2c"),
                           ("h2c_sys", "system CPU/request h2c"), ("tls_us", "CPU/request TLS"),
                           ("tls_user", "user CPU/request TLS"), ("tls_sys", "system CPU/request TLS"),
                           ("big_cpu", "CPU per GiB of a large file"), ("idle_kib", "idle memory")):
            a_, b_ = results["rill"].get(key), results["h2o"].get(key)
            if a_ and b_:
                print(f"rill/h2o {label}: {a_ / b_:.2f}x")
        # The rounds paired: each round ran both servers one after the other.
        for key, label in (("h2c_user_all", "user CPU/request h2c"), ("tls_user_all", "user CPU/request TLS")):
            a_, b_ = results["rill"].get(key), results["h2o"].get(key)
            if a_ and b_:
                print(f"  rill/h2o {label}, each round: " + " ".join(f"{x / y:.2f}" for x, y in zip(a_, b_) if y))
    tick_us = 1e6 / CLK_TCK / max(small_n // small_rounds, 1)
    print(f"(/proc's clock tick is {tick_us:.3f} us per request at {small_n // small_rounds} requests a round)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
