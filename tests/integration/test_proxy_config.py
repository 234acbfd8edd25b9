"""The proxy's configuration file (rill serve --config), its reload on SIGHUP, balancing and
passive health, the forwarding fields, the access log's backend note (docs/PROXY.md)."""
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import RILL_BIN, free_port
from server_fixtures import curl, start_server
from test_proxy import Recorder, echo, head_fields


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def wait_for(predicate, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def recorders():
    made = []

    def make(respond=b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"):
        r = Recorder(respond)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def serve(tmp_path):
    """serve(config_text, *flags) -> a rill server reading tmp_path/rill.yaml; each must exit 0
    at the end (a leak or a sanitizer report in the ASan build fails here)."""
    servers = []

    def start(text, *flags, threads=2, access_log=None):
        path = write(tmp_path / "rill.yaml", text)
        s = start_server(str(tmp_path), tls=False, extra=("--config", path) + flags,
                         threads=threads, access_log=access_log)
        s.config = path
        servers.append(s)
        return s

    yield start
    for s in servers:
        assert s.stop() == 0, s.stderr()


def reload(s, text, expect="configuration reloaded"):
    """Rewrites the file, sends SIGHUP, waits for the server to say it read it."""
    before = s.stderr().count(expect)
    write(s.config, text)
    s.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: s.stderr().count(expect) > before, expect)


def run_rill(*args):
    return subprocess.run([RILL_BIN, "serve", "--listen", "127.0.0.1:0", "--tls-listen", "none",
                           *args], capture_output=True, timeout=30)


# ---- bad files: one line naming the file and the line, exit 2 ------------------------------------

ROUTE = "routes:\n  - prefix: /api\n    backends: [http://127.0.0.1:9]\n"

BAD_FILES = [
    # (text, line, words in the message)
    ("routes:\n  - prefix: /api\n    backend: [http://a]\n", 3, "unknown key 'backend'"),
    ("listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", 2, "given twice (first on line 1)"),
    ("nonsense: 1\n", 1, "unknown key 'nonsense'"),
    ("- a\n- b\n", 1, "wants a mapping"),
    ("routes: /api\n", 1, "'routes' wants a list"),
    ("routes:\n  - /api\n", 2, "a route wants a mapping"),
    ("routes:\n  - backends: [http://a]\n", 2, "without 'prefix'"),
    ("routes:\n  - prefix: /api\n", 2, "has no 'backends'"),
    ("routes:\n  - prefix: api\n    backends: [http://a]\n", 2, "starting with '/'"),
    ("routes:\n  - prefix: /api\n    backends: []\n", 3, "'backends' is empty"),
    ("routes:\n  - prefix: /api\n    backends: [ftp://a]\n", 3, "not an http://, h2c:// or https://"),
    ("routes:\n  - prefix: /api\n    backends:\n      - http://a\n      - http://b/sub\n", 5, "has a path"),
    ("routes:\n  - prefix: /api\n    backends: [http://a:99999]\n", 3, "bad port"),
    ("routes:\n  - prefix: /api\n    backends: [http://]\n", 3, "no host"),
    (ROUTE + "  - prefix: /x\n    backends: [http://a]\n  - prefix: /api\n    backends: [http://b]\n",
     6, "the prefix '/api' is given twice (first on line 2)"),
    (ROUTE + "    balance: fastest\n", 4, "round-robin or least-connections"),
    (ROUTE + "    timeout: 5\n", 4, "'timeout' wants a mapping"),
    (ROUTE + "    timeout:\n      connect: soon\n", 5, "wants a duration"),
    (ROUTE + "    timeout:\n      connect: -5\n", 5, "wants a duration"),
    (ROUTE + "    timeout:\n      read: 5\n", 5, "unknown key 'read'"),
    (ROUTE + "    health: {down-for: 1h}\n", 4, "wants a duration"),
    (ROUTE + "    health-check: yes\n", 4, "'health-check' wants a mapping"),
    (ROUTE + "    health-check: [/healthz]\n", 4, "'health-check' wants a mapping"),
    (ROUTE + "    health-check:\n      path: healthz\n", 5, "starting with '/'"),
    (ROUTE + "    health-check:\n      path: /a b\n", 5, "without spaces"),
    (ROUTE + "    health-check:\n      path: ''\n", 5, "non-empty"),
    (ROUTE + "    health-check:\n      interval: 0\n", 5, "'interval' wants a duration above 0"),
    (ROUTE + "    health-check:\n      interval: often\n", 5, "wants a duration"),
    (ROUTE + "    health-check:\n      timeout: 0s\n", 5, "'timeout' wants a duration above 0"),
    (ROUTE + "    health-check:\n      fails: 0\n", 5, "'fails' wants a number from 1 to 1024"),
    (ROUTE + "    health-check:\n      passes: -1\n", 5, "'passes' wants a number from 1 to 1024"),
    (ROUTE + "    health-check:\n      passes: 2\n      passes: 3\n", 6, "given twice"),
    (ROUTE + "    health-check: {path: /h, method: HEAD}\n", 4, "unknown key 'method'"),
    ("proxy:\n  health-check: {interval-ms: 5}\n", 2, "unknown key 'interval-ms'"),
    (ROUTE + "    forwarding:\n      forwarded: maybe\n", 5, "true or false"),
    (ROUTE + "    forwarding: {x-real-ip: true}\n", 4, "unknown key 'x-real-ip'"),
    (ROUTE + "    request-headers:\n      set: {bad name: x}\n", 5, "not a field name"),
    (ROUTE + "    request-headers:\n      set:\n        connection: close\n", 6, "the proxy's own"),
    (ROUTE + "    request-headers:\n      replace: {a: b}\n", 5, "unknown key 'replace'"),
    (ROUTE + "    response-headers:\n      remove: x-a\n", 5, "'remove' wants a list"),
    (ROUTE + "    response-headers:\n      add: {x-a: [1, 2]}\n", 5, "'x-a' wants a single value"),
    ("threads: 0\n", 1, "from 1 to 1024"),
    ("threads: many\n", 1, "from 1 to 1024"),
    ("proxy:\n  insecure: 1\n", 2, "true or false"),
    ("proxy:\n  timeouts: {}\n", 2, "unknown key 'timeouts'"),
    ("root: [a, b]\n", 1, "'root' wants a single value"),
    ("routes:\n  - prefix: /api\n    backends: [http://a\n", 4, "did not find expected"),
    ("listen: 127.0.0.1:1\n\tthreads: 2\n", 2, "tab"),
    ("listen: a\n---\nlisten: b\n", 2, "a second YAML document"),
]


@pytest.mark.parametrize("text,line,words", BAD_FILES)
def test_bad_file_names_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path / "bad.yaml", text)
    r = run_rill("--config", path)
    assert r.returncode == 2, r
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"rill serve: {path}:{line}: "), lines
    assert words in lines[0], lines


def test_missing_file_exits_2(tmp_path):
    r = run_rill("--config", str(tmp_path / "none.yaml"))
    assert r.returncode == 2 and b"none.yaml" in r.stderr and len(r.stderr.splitlines()) == 1


def test_prefix_in_flag_and_file_exits_2(tmp_path):
    path = write(tmp_path / "rill.yaml", "\n" + ROUTE)
    r = run_rill("--config", path, "--proxy", "/api=http://127.0.0.1:9")
    assert r.returncode == 2, r
    assert f"{path}:3: the prefix '/api' is given by --proxy too".encode() in r.stderr


def test_root_and_file_route_for_slash_exit_2(tmp_path):
    path = write(tmp_path / "rill.yaml", "routes:\n  - prefix: /\n    backends: http://127.0.0.1:9\n")
    r = run_rill("--config", path, "--root", str(tmp_path))
    assert r.returncode == 2 and b"--root" in r.stderr


# ---- good files ----------------------------------------------------------------------------------

GOOD_FILES = [
    "routes:\n  - prefix: /api\n    backends: [{url}]\n",
    "routes:\n  - prefix: /api\n    backends: {url}\n",  # one backend without a list
    "routes: [{{prefix: /api, backends: [{url}]}}]\n",  # flow style
    "# only comments and a route\n\nroutes:\n  - backends:\n      - {url}\n    prefix: \"/api\"\n",
    "proxy:\n  timeout: {{first-byte: 10s, connect: 500ms, idle: 1m}}\n  balance: least-connections\n"
    "routes:\n  - prefix: /api\n    backends: [{url}, {url}]\n    health: {{down-for: 0}}\n",
    # an anchor and its alias
    "routes:\n  - prefix: /other\n    backends: &b [{url}]\n  - prefix: /api\n    backends: *b\n",
    "listen: 127.0.0.1:1\nthreads: 1\nroutes:\n  - prefix: /api\n    backends: [{url}]\n",  # flags win
]


@pytest.mark.parametrize("text", GOOD_FILES)
def test_good_file_serves(serve, recorders, text):
    rec = recorders()
    s = serve(text.format(url=rec.url()))
    r = curl(s.url("/api/x"))
    assert r.returncode == 0 and r.stdout == b"ok", r
    assert rec.requests[0][0].startswith(b"GET /api/x HTTP/1.1\r\n")
    r = curl(s.url("/"))  # other paths keep the demo
    assert b"<html" in r.stdout.lower()


def test_empty_file_and_flags_combine(serve, recorders):
    rec = recorders()
    s = serve("", "--proxy", f"/flag={rec.url()}")
    r = curl(s.url("/flag/a"))
    assert r.stdout == b"ok"
    r = curl(s.url("/"))
    assert b"<html" in r.stdout.lower()


def test_file_and_flag_routes_longest_prefix(serve, recorders):
    a, b = recorders(), recorders(echo)
    s = serve(f"routes:\n  - prefix: /api/v2\n    backends: [{b.url()}]\n", "--proxy", f"/api={a.url()}")
    assert curl(s.url("/api/v1")).stdout == b"ok"
    assert curl(s.url("/api/v2/x"), "-d", "two").stdout == b"two"
    assert len(a.requests) == 1 and len(b.requests) == 1


def test_file_sets_server_settings(tmp_path, recorders):
    rec = recorders()
    port = free_port()
    log = tmp_path / "access.log"
    path = write(tmp_path / "rill.yaml",
                 f"listen: 127.0.0.1:{port}\ntls-listen: none\nthreads: 1\naccess-log: {log}\n"
                 f"state-dir: {tmp_path}\nroutes:\n  - prefix: /\n    backends: [{rec.url()}]\n")
    p = subprocess.Popen([RILL_BIN, "serve", "--config", path], stderr=subprocess.PIPE)
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, "the listener")
        assert curl(f"http://127.0.0.1:{port}/z").stdout == b"ok"
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert b"https://" not in err  # tls-listen: none
    assert b'"GET /z HTTP/1.1" 200 2' in log.read_bytes()


# ---- per-route fields and forwarding switches ------------------------------------------------------

def test_request_and_response_field_edits(serve, recorders):
    rec = recorders(b"HTTP/1.1 200 OK\r\nserver: backend/1\r\nx-internal: 1\r\nx-keep: k\r\n"
                    b"content-length: 2\r\n\r\nok")
    s = serve(f"""proxy:
  request-headers:
    set: {{x-env: prod, x-team: core}}
  response-headers:
    add: {{x-proxy: rill}}
routes:
  - prefix: /
    backends: [{rec.url()}]
    request-headers:
      set: {{x-team: edge, host: backend.internal}}
      add: {{x-tag: one}}
      remove: [x-debug, user-agent]
    response-headers:
      set: {{cache-control: no-store}}
      remove: [server, x-internal]
""")
    r = curl("-i", s.url("/p"), "-H", "X-Debug: 1", "-H", "X-Team: client", "-H", "X-Tag: zero")
    assert r.returncode == 0, r
    _, fields = head_fields(rec.requests[0][0])
    names = [n for n, _ in fields]
    assert b"x-debug" not in names and b"user-agent" not in names
    assert fields.count((b"x-team", b"edge")) == 1 and names.count(b"x-team") == 1
    assert (b"x-env", b"prod") in fields
    assert (b"x-tag", b"zero") in fields and (b"x-tag", b"one") in fields
    assert names.count(b"host") == 1 and (b"host", b"backend.internal") in fields
    head = r.stdout.split(b"\r\n\r\n")[0].lower()
    assert b"server: backend" not in head and b"x-internal" not in head
    assert b"x-keep: k" in head and b"cache-control: no-store" in head and b"x-proxy: rill" in head


def test_forwarding_fields_exact(serve, recorders):
    rec = recorders()
    s = serve(f"routes:\n  - prefix: /\n    backends: [{rec.url()}]\n")
    r = curl(s.url("/f"), "-H", "Forwarded: for=192.0.2.1;proto=https",
             "-H", "X-Forwarded-Host: evil.example")
    assert r.stdout == b"ok"
    _, fields = head_fields(rec.requests[0][0])
    host = f"127.0.0.1:{s.port}".encode()
    assert (b"forwarded", b'for=192.0.2.1;proto=https, for=127.0.0.1;proto=http;host="' + host + b'"') in fields
    assert (b"x-forwarded-host", host) in fields and b"evil.example" not in rec.requests[0][0]
    assert (b"x-forwarded-for", b"127.0.0.1") in fields
    assert (b"x-forwarded-proto", b"http") in fields
    assert (b"via", b"1.1 rill") in fields


def test_forwarding_switched_off_passes_client_fields_untouched(serve, recorders):
    rec = recorders()
    s = serve(f"""proxy:
  forwarding: {{forwarded: false, x-forwarded-for: false, x-forwarded-proto: off}}
routes:
  - prefix: /
    backends: [{rec.url()}]
    forwarding: {{x-forwarded-host: no, via: no}}
""")
    r = curl("-i", s.url("/f"), "-H", "X-Forwarded-For: 198.51.100.7", "-H", "Forwarded: for=x")
    assert r.returncode == 0
    _, fields = head_fields(rec.requests[0][0])
    names = [n for n, _ in fields]
    assert (b"x-forwarded-for", b"198.51.100.7") in fields and names.count(b"x-forwarded-for") == 1
    assert (b"forwarded", b"for=x") in fields and names.count(b"forwarded") == 1
    for gone in (b"x-forwarded-proto", b"x-forwarded-host", b"via"):
        assert gone not in names, fields
    assert b"\r\nvia:" not in r.stdout.split(b"\r\n\r\n")[0].lower()


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as sk:
            sk.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_forwarded_quotes_an_ipv6_client(tmp_path, recorders):
    rec = recorders()
    port = free_port()
    path = write(tmp_path / "rill.yaml", f"routes:\n  - prefix: /\n    backends: [{rec.url()}]\n")
    p = subprocess.Popen([RILL_BIN, "serve", "--config", path, "--listen", f"[::1]:{port}",
                          "--tls-listen", "none", "--threads", "1"], stderr=subprocess.PIPE)
    try:
        def up():
            with socket.socket(socket.AF_INET6) as sk:
                return sk.connect_ex(("::1", port)) == 0
        wait_for(up, "the IPv6 listener")
        assert curl(f"http://[::1]:{port}/six").stdout == b"ok"
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    _, fields = head_fields(rec.requests[0][0])
    assert (b"forwarded", f'for="[::1]";proto=http;host="[::1]:{port}"'.encode()) in fields
    assert (b"x-forwarded-for", b"::1") in fields


# ---- timeouts --------------------------------------------------------------------------------------

def test_per_route_first_byte_timeout(serve, recorders):
    silent = recorders(None)
    s = serve(f"""routes:
  - prefix: /quick
    backends: [{silent.url()}]
    timeout: {{first-byte: 300ms}}
""")
    r = curl(s.url("/quick"), "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == b"504"
    assert "sent no response head within 300 ms" in s.stderr()


class Stalling:
    """A backend that sends a head and part of a body, then nothing until released."""

    def __init__(self, body_len=10, first=b"12345"):
        self.release = threading.Event()
        self.got = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.body_len, self.first = body_len, first
        threading.Thread(target=self.run, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        with c:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % self.body_len + self.first)
            self.got.set()
            self.release.wait(60)
            try:
                c.sendall(b"x" * (self.body_len - len(self.first)))
                c.recv(1)
            except OSError:
                pass

    def stop(self):
        self.release.set()
        self.sock.close()


def test_per_route_idle_timeout_cuts_a_stalled_body(serve):
    be = Stalling()
    try:
        s = serve(f"routes:\n  - prefix: /\n    backends: [{be.url()}]\n    timeout: {{idle: 300ms}}\n")
        r = curl("--http1.1", s.url("/stall"))
        assert r.returncode == 18, r  # a short body, never one that looks whole
        r = curl("--http2-prior-knowledge", s.url("/stall"))
        assert r.returncode in (16, 92), r  # the stream reset
        assert "sent nothing for 300 ms" in s.stderr()
    finally:
        be.stop()


# ---- balancing and health ----------------------------------------------------------------------------

def test_least_connections_avoids_the_busy_backend(serve, recorders):
    slow, fast = recorders(None), recorders()
    s = serve(f"""routes:
  - prefix: /
    backends: [{slow.url()}, {fast.url()}]
    balance: least-connections
    timeout: {{first-byte: 60s}}
""", threads=1)
    held = subprocess.Popen(["curl", "-sS", "--max-time", "50", s.url("/held")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(slow.requests) == 1, "the first request at the slow backend")
        for i in range(6):
            assert curl(s.url(f"/next{i}")).stdout == b"ok"
        assert len(fast.requests) == 6 and len(slow.requests) == 1
    finally:
        held.kill()
        held.wait()


def test_round_robin_does_not_avoid_the_busy_backend(serve, recorders):
    """The contrast to the least-connections case: the turns go on to the slow one."""
    slow, fast = recorders(None), recorders()
    s = serve(f"""routes:
  - prefix: /
    backends: [{slow.url()}, {fast.url()}]
    timeout: {{first-byte: 60s}}
""", threads=1)
    clients = [subprocess.Popen(["curl", "-sS", "--max-time", "50", s.url(f"/r{i}")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(4)]
    try:
        wait_for(lambda: len(slow.requests) == 2 and len(fast.requests) == 2, "two requests each")
    finally:
        for c in clients:
            c.kill()
            c.wait()


def test_dead_backend_is_skipped_for_a_while(serve, recorders, refused_port):
    live = recorders()
    dead = refused_port
    s = serve(f"""routes:
  - prefix: /
    backends: [http://127.0.0.1:{dead}, {live.url()}]
    health: {{down-for: 60s}}
""", threads=1)
    for i in range(6):
        assert curl(s.url(f"/g{i}")).stdout == b"ok"
    # only the first request met the dead one (and went on); later ones skipped it
    assert s.stderr().count(f"http://127.0.0.1:{dead}: ") == 1, s.stderr()
    assert s.stderr().count("trying") == 1
    # a POST is not replayed, but it is no longer sent to the dead one either
    for _ in range(2):
        r = curl(s.url("/p"), "-d", "x", "-o", "/dev/null", "-w", "%{http_code}")
        assert r.stdout == b"200"
    assert len(live.requests) == 8


def test_dead_backend_comes_back_after_down_for(serve, recorders):
    live = recorders()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    back = sock.getsockname()[1]  # bound, not listening: refused until it listens
    s = serve(f"""routes:
  - prefix: /
    backends: [http://127.0.0.1:{back}, {live.url()}]
    health: {{down-for: 200ms}}
""", threads=1)
    assert curl(s.url("/a")).stdout == b"ok"  # found it down, went on
    sock.listen(8)

    def answer():  # the same port, now answering
        while True:
            try:
                c, _ = sock.accept()
            except OSError:
                return
            with c:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    d = c.recv(4096)
                    if not d:
                        break
                    buf += d
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nback")

    threading.Thread(target=answer, daemon=True).start()
    try:
        wait_for(lambda: curl(s.url("/b")).stdout == b"back", "the backend back in the rotation")
    finally:
        sock.close()


def test_all_backends_down_still_tried(serve, refused_port):
    a = refused_port
    with socket.socket() as held:  # a second port that refuses (see refused_port)
        held.bind(("127.0.0.1", 0))
        b = held.getsockname()[1]
        all_backends_down_still_tried(serve, a, b)


def all_backends_down_still_tried(serve, a, b):
    s = serve(f"routes:\n  - prefix: /\n    backends: [http://127.0.0.1:{a}, http://127.0.0.1:{b}]\n")
    for _ in range(3):
        r = curl(s.url("/x"), "-o", "/dev/null", "-w", "%{http_code}")
        assert r.stdout == b"502"
    err = s.stderr()
    assert f"127.0.0.1:{a}" in err and f"127.0.0.1:{b}" in err


# ---- the access log ----------------------------------------------------------------------------------

def test_access_log_names_backend_and_first_byte_time(serve, recorders, tmp_path, refused_port):
    rec = recorders()
    dead = refused_port
    log = tmp_path / "access.log"
    s = serve(f"""routes:
  - prefix: /api
    backends: [{rec.url()}]
  - prefix: /dead
    backends: [http://127.0.0.1:{dead}]
""", access_log=str(log))
    assert curl(s.url("/api/a")).stdout == b"ok"
    assert curl("--http2-prior-knowledge", s.url("/api/b")).stdout == b"ok"
    assert curl(s.url("/dead"), "-o", "/dev/null", "-w", "%{http_code}").stdout == b"502"
    assert b"<html" in curl(s.url("/")).stdout.lower()
    assert s.stop() == 0
    lines = log.read_text().splitlines()
    byline = {l.split('"')[1]: l for l in lines}
    for req in ("GET /api/a HTTP/1.1", "GET /api/b HTTP/2"):
        line = byline[req]
        note = line.rsplit('"', 2)[1]
        assert note.startswith(f"backend={rec.url()} ttfb_ms="), line
        assert note.split("ttfb_ms=")[1].isdigit(), line
    assert byline["GET /dead HTTP/1.1"].endswith(f'"backend=http://127.0.0.1:{dead} ttfb_ms=-"')
    assert "backend=" not in byline["GET / HTTP/1.1"]


# ---- reload -------------------------------------------------------------------------------------------

class SlowStream:
    """A backend that streams a known body in pieces, the last ones only once released."""

    def __init__(self, pieces=50, size=20000):
        self.data = os.urandom(pieces * size)
        self.pieces, self.size = pieces, size
        self.started = threading.Event()
        self.release = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.run, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def run(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        with c:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(self.data))
            half = self.pieces // 2
            for i in range(self.pieces):
                if i == half:
                    self.started.set()
                    self.release.wait(60)
                c.sendall(self.data[i * self.size:(i + 1) * self.size])
            try:
                c.recv(1)
            except OSError:
                pass

    def stop(self):
        self.release.set()
        self.sock.close()


def routes_to(url, *extra):
    text = f"routes:\n  - prefix: /s\n    backends: [{url}]\n"
    for prefix, u in extra:
        text += f"  - prefix: {prefix}\n    backends: [{u}]\n"
    return text


@pytest.mark.parametrize("front", [["--http1.1"], ["--http2-prior-knowledge"]])
def test_reload_moves_a_prefix_while_a_stream_on_the_old_route_completes(serve, recorders, tmp_path,
                                                                         front):
    slow = SlowStream()
    new = recorders(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nnew")
    try:
        s = serve(routes_to(slow.url()))
        out = tmp_path / "stream.bin"
        streaming = subprocess.Popen(["curl", "-sS", "--max-time", "60", *front, "-o", str(out),
                                      s.url("/s/big")], stderr=subprocess.PIPE)
        assert slow.started.wait(30)
        reload(s, routes_to(new.url(), ("/added", new.url())))
        # new requests take the new route, the old one's stream is still on its way
        assert curl(*front, s.url("/s/x")).stdout == b"new"
        assert curl(*front, s.url("/added/y")).stdout == b"new"
        assert streaming.poll() is None
        slow.release.set()
        _, err = streaming.communicate(timeout=60)
        assert streaming.returncode == 0, err
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(slow.data).digest()
    finally:
        slow.stop()


def test_reload_removes_a_prefix(serve, recorders):
    a = recorders()
    s = serve(routes_to(a.url(), ("/gone", a.url())))
    assert curl(s.url("/gone/x")).stdout == b"ok"
    reload(s, routes_to(a.url()))
    r = curl(s.url("/gone/x"), "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == b"404" and len(a.requests) == 1  # the demo's answer now


def test_bad_reload_keeps_the_old_configuration(serve, recorders):
    a, b = recorders(), recorders(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb")
    s = serve(routes_to(a.url()))
    reload(s, "routes:\n  - prefix: /s\n    backends: [ftp://x]\n",
           expect="reload failed, keeping the old configuration")
    line = [l for l in s.stderr().splitlines() if "reload failed" in l][0]
    assert f"{s.config}:3: 'ftp://x' is not an http://" in line
    assert curl(s.url("/s/1")).stdout == b"ok"
    os.unlink(s.config)
    s.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: s.stderr().count("reload failed") == 2, "the second failure")
    assert curl(s.url("/s/2")).stdout == b"ok"
    reload(s, routes_to(b.url()))  # a good file again is taken
    assert curl(s.url("/s/3")).stdout == b"b"


def test_many_reloads_with_traffic(serve, recorders):
    """Under ASan: every configuration of the way is freed (the fixture wants exit 0)."""
    backends = [recorders(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n%d" % i) for i in range(3)]
    s = serve(routes_to(backends[0].url()))
    for round in range(8):
        be = backends[round % 3]
        reload(s, routes_to(be.url(), (f"/r{round}", be.url())))
        for front in (["--http1.1"], ["--http2-prior-knowledge"]):
            assert curl(*front, s.url("/s/x")).stdout == b"%d" % (round % 3)
            assert curl(*front, s.url(f"/r{round}/x")).stdout == b"%d" % (round % 3)


# ---- --proxy-forwarding ------------------------------------------------------------------------------

FORWARDING = (b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"via")


def forwarding_names(recorder, i=0):
    _, fields = head_fields(recorder.requests[i][0])
    return {n for n, _ in fields if n in FORWARDING}


@pytest.mark.parametrize("value,added", [
    ("none", set()),
    ("via", {b"via"}),
    ("forwarded,x-forwarded-host", {b"forwarded", b"x-forwarded-host"}),
    ("forwarded,x-forwarded-for,x-forwarded-proto,x-forwarded-host,via", set(FORWARDING)),
])
def test_forwarding_flag_with_proxy_flags(tmp_path, recorders, value, added):
    rec = recorders()
    s = start_server(str(tmp_path), tls=False, extra=("--proxy", f"/={rec.url()}",
                                                      "--proxy-forwarding", value))
    try:
        assert curl(s.url("/")).stdout == b"ok"
        assert forwarding_names(rec) == added
    finally:
        assert s.stop() == 0, s.stderr()


@pytest.mark.parametrize("value", ["", "via,", "xff", "Via"])
def test_bad_forwarding_flag_exits_2(value):
    r = run_rill("--proxy", "/=http://127.0.0.1:9", "--proxy-forwarding", value)
    assert r.returncode == 2 and b"--proxy-forwarding" in r.stderr.splitlines()[0], r


def test_forwarding_flag_between_file_defaults_and_route(serve, recorders):
    a, b = recorders(), recorders()
    s = serve(f"""proxy:
  forwarding: {{via: false, forwarded: false}}
routes:
  - prefix: /a
    backends: [{a.url()}]
  - prefix: /b
    backends: [{b.url()}]
    forwarding: {{x-forwarded-for: false}}
""", "--proxy-forwarding", "via,x-forwarded-for")
    assert curl(s.url("/a")).stdout == b"ok" and curl(s.url("/b")).stdout == b"ok"
    assert forwarding_names(a) == {b"via", b"x-forwarded-for"}  # the flag over proxy:
    assert forwarding_names(b) == {b"via"}  # the route's own over the flag


def test_per_route_connect_timeout(serve):
    """A backend whose TLS handshake never ends: the route's connect timeout (300 ms) ends the
    attempt with a 502 before its first-byte timeout (5 s) could answer 504."""
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)  # the kernel completes TCP; nobody ever answers the ClientHello
    try:
        s = serve(f"""routes:
  - prefix: /
    backends: [https://127.0.0.1:{mute.getsockname()[1]}]
    timeout: {{connect: 300ms, first-byte: 5s}}
""")
        r = curl(s.url("/slow-tls"), "-o", "/dev/null", "-w", "%{http_code}")
        assert r.stdout == b"502", (r, s.stderr())
        assert f"https://127.0.0.1:{mute.getsockname()[1]}" in s.stderr()
    finally:
        mute.close()


def test_proxy_timeout_flag_between_file_defaults_and_route(serve, recorders):
    silent = recorders(None)
    s = serve(f"""proxy:
  timeout: {{first-byte: 60s}}
routes:
  - prefix: /defaults
    backends: [{silent.url()}]
  - prefix: /own
    backends: [{silent.url()}]
    timeout: {{first-byte: 400ms}}
""", "--proxy-timeout", "300")
    for path in ("/defaults", "/own"):
        r = curl(s.url(path), "-o", "/dev/null", "-w", "%{http_code}")
        assert r.stdout == b"504"
    err = s.stderr()
    assert "within 300 ms" in err and "within 400 ms" in err


@pytest.mark.parametrize("how", ["flag", "file"])
def test_longer_server_route_wins_over_a_proxy_prefix(tmp_path, serve, recorders, how):
    """The demo's WebSocket path /ws/echo is a longer route than the proxy's /ws: it stays the
    demo's, the other /ws paths go to the backend."""
    rec = recorders()
    if how == "flag":
        s = serve("", "--proxy", f"/ws={rec.url()}")
    else:
        s = serve(f"routes:\n  - prefix: /ws\n    backends: [{rec.url()}]\n")
    assert curl(s.url("/ws/other")).stdout == b"ok"
    r = curl(s.url("/ws/echo"), "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout != b"200" and len(rec.requests) == 1, r
    with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
        c.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                  b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                break
            head += d
    assert head.startswith(b"HTTP/1.1 101"), head
    assert len(rec.requests) == 1
