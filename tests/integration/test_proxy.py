"""rill serve --proxy: what reaches the backend (a raw-socket recorder keeps the exact bytes),
bodies both ways through every front (curl over HTTP/1.1, h2c and h2 over TLS; nghttp) and
backend (Python's http.server, a raw HTTP/1.1 echo, nghttpd and a python-h2 server over h2c),
trailers, 1xx, errors (502, 504, a backend dying midway, a client leaving) and smuggling
attempts that must never reach the backend."""
import hashlib
import http.server
import os
import random
import socket
import socketserver
import ssl
import subprocess
import threading
import time

import h2.config
import h2.settings
import h2.connection
import h2.events
import pytest

from conftest import RILL_BIN, free_port
from server_fixtures import curl, start_server, wait_listening

MIB = 1024 * 1024


def sha(data):
    return hashlib.sha256(data).hexdigest()


# ---- backends ----------------------------------------------------------------------------------

class Recorder:
    """A raw HTTP/1.1 backend: keeps every byte each connection sent, answers each request with
    respond(head, body) (bytes), keep-alive. respond=None: answers nothing (a backend that hangs).
    Reads bodies by content-length or chunked, so the echo works at any size."""

    def __init__(self, respond=b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"):
        self.respond = respond
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        # The proxy may open 64 connections per worker at once: a short queue drops SYNs (the
        # retry comes a second later) while this Python thread accepts.
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []      # bytearray per connection: everything received
        self.requests = []   # (head bytes, body bytes) per request
        self.closed = threading.Event()  # some connection was closed by the proxy
        self.stopping = False
        self.acceptor = threading.Thread(target=self.accept, daemon=True)
        self.acceptor.start()

    def url(self, scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}"

    def accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            buf = bytearray()
            with self.lock:
                self.conns.append(buf)
            threading.Thread(target=self.serve, args=(c, buf), daemon=True).start()

    def serve(self, c, record):
        c.settimeout(120)
        f = c.makefile("rb")
        try:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline()
                    if not line:
                        self.closed.set()
                        return
                    head += line
                    record += line
                fields = {}
                for line in head.split(b"\r\n")[1:]:
                    if b":" in line:
                        n, v = line.split(b":", 1)
                        fields[n.strip().lower()] = v.strip()
                body = b""
                if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
                    while True:
                        size_line = f.readline()
                        record += size_line
                        size = int(size_line.split(b";")[0].strip(), 16)
                        if size:
                            chunk = f.read(size + 2)
                            record += chunk
                            body += chunk[:size]
                        else:
                            while True:  # trailer section
                                t = f.readline()
                                record += t
                                if t in (b"\r\n", b""):
                                    break
                            break
                elif b"content-length" in fields:
                    body = f.read(int(fields[b"content-length"]))
                    record += body
                with self.lock:
                    self.requests.append((head, body))
                if self.respond is None:
                    continue
                out = self.respond(head, body) if callable(self.respond) else self.respond
                if out:  # a callable may leave a request unanswered
                    c.sendall(out)
        except (OSError, ValueError):
            self.closed.set()
        finally:
            c.close()

    def received(self):
        with self.lock:
            return b"".join(bytes(b) for b in self.conns)

    def stop(self):
        """Stops listening for good. A close alone leaves an accept() blocked in the kernel holding
        the socket (still listening), and a thread between its read of the descriptor and the
        call would accept on whatever socket takes that descriptor number next, a later test's
        backend; shutdown wakes the accept, and the thread is waited for before the close."""
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.acceptor.join(timeout=5)
        self.sock.close()


def echo(head, body):
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body


def head_fields(head):
    """The request line and the fields as (lowercase name, value) in order."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    return lines[0], [(n.strip().lower(), v.strip()) for n, v in (l.split(b":", 1) for l in lines[1:])]


class FilesBackend:
    """Python's http.server serving a folder (HTTP/1.0-style answers, close-delimited or with
    content-length)."""

    def __init__(self, root):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=root, **k)
        handler.log_message = lambda *a: None
        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class H2Backend:
    """A python-h2 server over h2c: echoes the request body; /trailers answers with a body and
    grpc-style trailers; the request head of each stream is kept."""

    def __init__(self, tls=None):
        self.tls = tls  # an ssl.SSLContext (ALPN h2) to serve over TLS
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.requests = []  # (head fields, body, trailer fields) of each stream that ended
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.tls:
                try:
                    c = self.tls.wrap_socket(c, server_side=True)
                except (OSError, ssl.SSLError):
                    c.close()
                    continue
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16 * MIB})
        conn.increment_flow_control_window(64 * MIB)
        c.sendall(conn.data_to_send())
        bodies, heads, pending, trailers = {}, {}, {}, {}
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        heads[ev.stream_id] = dict(ev.headers)
                        self.heads.append(ev.headers)
                        bodies[ev.stream_id] = b""
                    elif isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.TrailersReceived):
                        trailers[ev.stream_id] = ev.headers
                    elif isinstance(ev, h2.events.StreamEnded):
                        sid = ev.stream_id
                        self.requests.append((heads[sid], bodies[sid], trailers.get(sid)))
                        path = heads[sid].get(b":path", b"")
                        if path.startswith(b"/trailers"):
                            body = b"grpc-ish body"
                            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
                            pending[sid] = (body, [("grpc-status", "0"), ("grpc-message", "fine")])
                        else:
                            body = bodies[sid]
                            conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
                            pending[sid] = (body, None)
                    elif isinstance(ev, h2.events.WindowUpdated):
                        pass
                self.flush(conn, c, pending)
        except OSError:
            return
        finally:
            c.close()

    @staticmethod
    def flush(conn, c, pending):
        for sid in list(pending):
            body, trailers = pending[sid]
            while body:
                n = min(len(body), conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if n <= 0:
                    break
                conn.send_data(sid, body[:n])
                body = body[n:]
            if body:
                pending[sid] = (body, trailers)
                continue
            if trailers:
                conn.send_headers(sid, trailers, end_stream=True)
            else:
                conn.end_stream(sid)
            del pending[sid]
        c.sendall(conn.data_to_send())

    def stop(self):
        self.sock.close()


# ---- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.stop()


@pytest.fixture
def proxy(tmp_path):
    """start(*proxy_args) -> a rill server; each is stopped at the end and must exit 0 (a leak
    or a sanitizer report in the ASan build fails here)."""
    servers = []

    def start(*args, tls=True):
        s = start_server(str(tmp_path), tls=tls, extra=args)
        servers.append(s)
        return s

    yield start
    for s in servers:
        assert s.stop() == 0, s.stderr()


def front_args(server, kind):
    """curl arguments for a front: h1 (HTTP/1.1 cleartext), h2c (prior knowledge), h2 (TLS)."""
    if kind == "h1":
        return ["--http1.1"], server.url
    if kind == "h2c":
        return ["--http2-prior-knowledge"], server.url
    return ["--http2", "-k"], lambda path: server.url(path, tls=True)


# ---- flags ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nothing", "/x", "x=http://a", "/=", "/=ftp://a", "/=http://",
                                   "/=http://a:0", "/=http://a:99999", "/=http://a/sub",
                                   "/=http://a,", "/=http://a:x"])
def test_bad_proxy_value_exits_2(value):
    r = subprocess.run([RILL_BIN, "serve", "--listen", "127.0.0.1:0", "--tls-listen", "none",
                        "--proxy", value], capture_output=True, timeout=30)
    assert r.returncode == 2, r
    assert b"--proxy" in r.stderr.splitlines()[0]


def test_bad_proxy_timeout_exits_2():
    r = subprocess.run([RILL_BIN, "serve", "--proxy-timeout", "soon"], capture_output=True, timeout=30)
    assert r.returncode == 2 and b"--proxy-timeout" in r.stderr


def test_other_prefixes_keep_the_demo(proxy, recorder):
    s = proxy("--proxy", f"/api={recorder.url()}")
    r = curl(s.url("/"))
    assert r.returncode == 0 and b"<html" in r.stdout.lower()
    r = curl(s.url("/api/x"))
    assert r.stdout == b"ok"
    assert recorder.requests[0][0].startswith(b"GET /api/x HTTP/1.1\r\n")


# ---- what the backend receives ------------------------------------------------------------------

def test_http1_front_head_as_the_backend_got_it(proxy, recorder):
    s = proxy("--proxy", f"/={recorder.url()}")
    r = curl("--http1.1", s.url("/a/b?c=d"), "-H", "Connection: keep-alive, X-Hop",
             "-H", "X-Hop: gone", "-H", "Keep-Alive: timeout=5", "-H", "Proxy-Connection: x",
             "-H", "TE: trailers", "-H", "Upgrade: foo", "-H", "X-Forwarded-For: 10.0.0.1",
             "-H", "X-Forwarded-Proto: gopher", "-H", "Via: 1.0 edge", "-H", "X-Keep: me")
    assert r.returncode == 0 and r.stdout == b"ok", r
    line, fields = head_fields(recorder.requests[0][0])
    assert line == b"GET /a/b?c=d HTTP/1.1"
    assert sorted(fields) == sorted([
        (b"host", f"127.0.0.1:{s.port}".encode()),
        (b"user-agent", fields[[n for n, _ in fields].index(b"user-agent")][1]),
        (b"accept", b"*/*"),
        (b"x-keep", b"me"),
        (b"x-forwarded-for", b"10.0.0.1, 127.0.0.1"),
        (b"x-forwarded-proto", b"http"),
        (b"x-forwarded-host", f"127.0.0.1:{s.port}".encode()),
        (b"forwarded", f'for=127.0.0.1;proto=http;host="127.0.0.1:{s.port}"'.encode()),
        (b"via", b"1.0 edge, 1.1 rill"),
    ]), fields


def test_h2_front_post_keeps_content_length_no_transfer_encoding(proxy, recorder):
    s = proxy("--proxy", f"/={recorder.url()}")
    r = curl("--http2-prior-knowledge", s.url("/post"), "--data-binary", "hello world")
    assert r.returncode == 0 and r.stdout == b"ok", r
    head, body = recorder.requests[0]
    line, fields = head_fields(head)
    names = [n for n, _ in fields]
    assert line == b"POST /post HTTP/1.1"
    assert b"transfer-encoding" not in names
    assert dict(fields)[b"content-length"] == b"11" and names.count(b"content-length") == 1
    assert dict(fields)[b"via"] == b"2 rill"
    assert dict(fields)[b"host"] == f"127.0.0.1:{s.port}".encode()
    assert body == b"hello world"


def test_tls_front_says_https(proxy, recorder):
    s = proxy("--proxy", f"/={recorder.url()}")
    r = curl("-k", "--http2", s.url("/", tls=True))
    assert r.returncode == 0 and r.stdout == b"ok", r
    fields = dict(head_fields(recorder.requests[0][0])[1])
    assert fields[b"x-forwarded-proto"] == b"https"
    assert fields[b"host"] == f"localhost:{s.tls_port}".encode()


def test_get_without_body_has_no_framing(proxy, recorder):
    """A GET from an HTTP/2 front goes without content-length or chunked coding."""
    s = proxy("--proxy", f"/={recorder.url()}")
    assert curl("--http2-prior-knowledge", s.url("/g")).stdout == b"ok"
    names = [n for n, _ in head_fields(recorder.requests[0][0])[1]]
    assert b"content-length" not in names and b"transfer-encoding" not in names


def test_round_robin(proxy):
    a, b = Recorder(respond=b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na"), \
        Recorder(respond=b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb")
    try:
        s = proxy("--proxy", f"/rr={a.url()},{b.url()}")
        got = [curl(s.url("/rr")).stdout for _ in range(6)]
        assert sorted(got) == [b"a"] * 3 + [b"b"] * 3, got
        assert len(a.requests) == 3 and len(b.requests) == 3
    finally:
        a.stop()
        b.stop()


# ---- bodies, byte for byte --------------------------------------------------------------------

@pytest.mark.parametrize("front", ["h1", "h2c", "h2"])
@pytest.mark.parametrize("size", [0, MIB, 20 * MIB])
def test_echo_through_http1_backend(proxy, tmp_path, front, size):
    be = Recorder(respond=echo)
    try:
        s = proxy("--proxy", f"/={be.url()}")
        data = random.Random(size).randbytes(size)
        src = tmp_path / "up.bin"
        src.write_bytes(data)
        args, url = front_args(s, front)
        r = curl(*args, "--data-binary", f"@{src}", "-H", "content-type: application/octet-stream",
                 url("/echo"), timeout=120)
        assert r.returncode == 0, r.stderr
        assert len(r.stdout) == size and sha(r.stdout) == sha(data)
        assert sha(be.requests[0][1]) == sha(data)
    finally:
        be.stop()


def test_chunked_upload_from_http1_front(proxy, tmp_path):
    """An HTTP/1.1 front body of unknown length goes on chunked."""
    be = Recorder(respond=echo)
    try:
        s = proxy("--proxy", f"/={be.url()}")
        data = random.Random(7).randbytes(3 * MIB)
        r = subprocess.run(["curl", "-sS", "--http1.1", "-H", "Transfer-Encoding: chunked",
                            "--data-binary", "@-", s.url("/c")], input=data, capture_output=True,
                           timeout=120)
        assert r.returncode == 0 and sha(r.stdout) == sha(data)
        head = be.requests[0][0].lower()
        assert b"transfer-encoding: chunked" in head and b"content-length" not in head
    finally:
        be.stop()


@pytest.mark.parametrize("front", ["h1", "h2c", "h2"])
def test_download_from_http_server(proxy, tmp_path, front):
    root = tmp_path / "files"
    root.mkdir()
    data = random.Random(3).randbytes(20 * MIB)
    (root / "big.bin").write_bytes(data)
    (root / "empty.bin").write_bytes(b"")
    be = FilesBackend(str(root))
    try:
        s = proxy("--proxy", f"/=http://127.0.0.1:{be.port}")
        args, url = front_args(s, front)
        r = curl(*args, url("/big.bin"), timeout=120)
        assert r.returncode == 0 and sha(r.stdout) == sha(data), r.stderr
        r = curl(*args, url("/empty.bin"), "-w", "%{http_code}")
        assert r.returncode == 0 and r.stdout == b"200"
    finally:
        be.stop()


def test_download_from_nghttpd_h2c(proxy, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    data = random.Random(4).randbytes(20 * MIB)
    (root / "big.bin").write_bytes(data)
    port = free_port()
    ng = subprocess.Popen(["nghttpd", "--no-tls", "-d", str(root), str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, ng, os.devnull)
        s = proxy("--proxy", f"/=h2c://127.0.0.1:{port}")
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            r = curl(*args, s.url("/big.bin"), timeout=120)
            assert r.returncode == 0 and sha(r.stdout) == sha(data), r.stderr
        r = subprocess.run(["nghttp", s.url("/big.bin")], capture_output=True,
                           timeout=120)
        assert r.returncode == 0 and sha(r.stdout) == sha(data)
    finally:
        ng.kill()
        ng.wait()


@pytest.mark.parametrize("size", [0, MIB, 20 * MIB])
def test_echo_through_h2c_backend(proxy, tmp_path, size):
    be = H2Backend()
    try:
        s = proxy("--proxy", f"/=h2c://127.0.0.1:{be.port}")
        data = random.Random(size + 1).randbytes(size)
        src = tmp_path / "up.bin"
        src.write_bytes(data)
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            r = curl(*args, "--data-binary", f"@{src}", s.url("/echo"), timeout=120)
            assert r.returncode == 0 and sha(r.stdout) == sha(data), r.stderr
    finally:
        be.stop()


# ---- trailers, 1xx ----------------------------------------------------------------------------

def h2_request(port, headers, body=b"", validate=True, timeout=30):
    """A python-h2 client over h2c: sends one request (headers as given, no checks when validate is
    False), returns the events received until the stream ended or was reset."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=validate, normalize_outbound_headers=validate))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    conn.send_headers(1, headers, end_stream=not body)
    if body:
        conn.send_data(1, body, end_stream=True)
    sock.sendall(conn.data_to_send())  # all in one write: the proxy sees it in one read
    events = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                events.append(ev)
                if isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            sock.sendall(conn.data_to_send())
            if any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset,
                                  h2.events.ConnectionTerminated)) for e in events):
                break
    finally:
        sock.close()
    return events


def test_trailers_from_h2c_backend(proxy):
    be = H2Backend()
    try:
        s = proxy("--proxy", f"/=h2c://127.0.0.1:{be.port}")
        events = h2_request(s.port, [(":method", "POST"), (":scheme", "http"),
                                     (":authority", f"127.0.0.1:{s.port}"), (":path", "/trailers"),
                                     ("te", "trailers"), ("content-type", "application/grpc")],
                            body=b"\0\0\0\0\0")
        trailers = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
        assert trailers, events
        assert dict(trailers[0].headers)[b"grpc-status"] == b"0"
        data = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
        assert data == b"grpc-ish body"
        assert (b"te", b"trailers") in be.heads[0]  # TE: trailers goes on to an HTTP/2 backend
        # nghttp shows them too
        r = subprocess.run(["nghttp", "-v", "-d", "/dev/null", s.url("/trailers")],
                           capture_output=True, timeout=60)
        assert b"grpc-message: fine" in r.stdout
    finally:
        be.stop()


def test_early_hints_are_forwarded(proxy):
    be = Recorder(respond=b"HTTP/1.1 103 Early Hints\r\nlink: </s.css>; rel=preload\r\n\r\n"
                          b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone")
    try:
        s = proxy("--proxy", f"/={be.url()}")
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            r = curl("-v", *args, s.url("/"))
            assert r.returncode == 0 and r.stdout == b"done"
            assert b"< HTTP/1.1 103" in r.stderr or b"< HTTP/2 103" in r.stderr, r.stderr
            assert b"< link: </s.css>; rel=preload" in r.stderr
    finally:
        be.stop()


# ---- errors -----------------------------------------------------------------------------------

def test_closed_port_is_502(proxy):
    port = free_port()
    s = proxy("--proxy", f"/=http://127.0.0.1:{port}")
    for args in (["--http1.1"], ["--http2-prior-knowledge"]):
        r = curl(*args, s.url("/x"), "-w", "%{http_code}", "-o", "/dev/null")
        assert r.stdout == b"502", r
    assert f"http://127.0.0.1:{port}" in s.stderr()


def test_unresolvable_name_is_502(proxy):
    s = proxy("--proxy", "/=http://no-such-host.invalid:80")
    r = curl(s.url("/x"), "-w", "%{http_code}", "-o", "/dev/null")
    assert r.stdout == b"502"
    assert "no-such-host.invalid" in s.stderr()


def test_silent_backend_is_504(proxy):
    be = Recorder(respond=None)
    try:
        s = proxy("--proxy", f"/={be.url()}", "--proxy-timeout", "700")
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            r = curl(*args, s.url("/slow"), "-w", "%{http_code}", "-o", "/dev/null")
            assert r.stdout == b"504", r
        assert "sent no response head within 700 ms" in s.stderr()
    finally:
        be.stop()


def test_garbage_from_backend_is_502(proxy):
    be = Recorder(respond=b"this is not HTTP\r\n\r\n")
    try:
        s = proxy("--proxy", f"/={be.url()}")
        r = curl(s.url("/"), "-w", "%{http_code}", "-o", "/dev/null")
        assert r.stdout == b"502"
    finally:
        be.stop()


def test_backend_with_length_and_chunked_is_502(proxy):
    be = Recorder(respond=b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"
                          b"5\r\nhello\r\n0\r\n\r\n")
    try:
        s = proxy("--proxy", f"/={be.url()}")
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            r = curl(*args, s.url("/"), "-w", "%{http_code}", "-o", "/dev/null")
            assert r.stdout == b"502", r
    finally:
        be.stop()


def dying(head, body):
    """Promises 8 MiB, sends 1 MiB, then the connection ends."""
    return (b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (8 * MIB)) + b"x" * MIB


class DyingRecorder(Recorder):
    def serve(self, c, record):
        f = c.makefile("rb")
        while f.readline() not in (b"\r\n", b""):
            pass
        try:
            c.sendall(dying(None, None))
        finally:
            c.shutdown(socket.SHUT_RDWR)
            c.close()


@pytest.mark.parametrize("front,codes", [("h1", {18}), ("h2c", {92, 16, 56}), ("h2", {92, 16, 56})])
def test_backend_dying_midway_is_an_error_not_a_short_body(proxy, front, codes):
    be = DyingRecorder()
    try:
        s = proxy("--proxy", f"/={be.url()}")
        args, url = front_args(s, front)
        r = curl(*args, url("/die"), "-o", "/dev/null")
        assert r.returncode in codes, r
        assert be.url() in s.stderr()  # one line naming the backend
    finally:
        be.stop()


class CutChunked(Recorder):
    """A backend that dies midway: a chunked 200 whose first chunk's 1 MiB comes, then nothing
    (no chunk end, no last chunk) and the connection goes."""

    def serve(self, c, record):
        f = c.makefile("rb")
        while f.readline() not in (b"\r\n", b""):
            pass
        c.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n100000\r\n" + b"y" * MIB)
        c.shutdown(socket.SHUT_RDWR)
        c.close()


def test_backend_dying_midway_chunked_h1_front(proxy):
    """No content-length from the backend: the HTTP/1.1 front is chunked, and the cut shows as a
    chunked body that never ends (curl 18), never as a clean last chunk."""
    be = CutChunked()
    try:
        s = proxy("--proxy", f"/={be.url()}")
        r = curl("--http1.1", s.url("/"), "-o", "/dev/null")
        assert r.returncode == 18, r
    finally:
        be.stop()


def test_backend_dying_midway_http10_front_is_reset(proxy):
    """An HTTP/1.0 client's body runs to the close (no chunked coding there): a cut backend must
    not end it with a FIN, which would read as the whole body, but with a reset."""
    be = CutChunked()
    try:
        s = proxy("--proxy", f"/={be.url()}")
        r = curl("--http1.0", s.url("/"), "-o", "/dev/null")
        assert r.returncode == 56 and b"reset" in r.stderr, r  # never 0 with a short body
    finally:
        be.stop()


def test_client_gone_cancels_backend_request(proxy):
    be = Recorder(respond=None)
    try:
        s = proxy("--proxy", f"/={be.url()}")
        for front in ("h1", "h2"):
            be.closed.clear()
            n = len(be.requests)  # before sending: the request may reach the backend at once
            if front == "h1":
                c = socket.create_connection(("127.0.0.1", s.port))
                c.sendall(b"GET /wait HTTP/1.1\r\nhost: x\r\n\r\n")
            else:
                c = socket.create_connection(("127.0.0.1", s.port))
                conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
                conn.initiate_connection()
                conn.send_headers(1, [(":method", "GET"), (":scheme", "http"),
                                      (":authority", "x"), (":path", "/wait")], end_stream=True)
                c.sendall(conn.data_to_send())
            deadline = time.monotonic() + 30
            while len(be.requests) == n and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(be.requests) == n + 1
            c.close()
            # HTTP/1.1 has no way to cancel one request but closing its connection
            assert be.closed.wait(30), front
    finally:
        be.stop()


# ---- smuggling: refused at the front, nothing reaches the backend -----------------------------

def base_headers(port, extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"),
            (":path", "/smuggle")] + list(extra)


@pytest.mark.parametrize("name,extra,body", [
    ("length longer than data", [("content-length", "5")], b"0123456789"),
    ("length shorter than data", [("content-length", "20")], b"0123456789"),
    ("transfer-encoding", [("transfer-encoding", "chunked")], b"0\r\n\r\n"),
    ("crlf in value", [("x-evil", "a\r\nx-injected: 1")], b"abc"),
    ("lf in value", [("x-evil", "a\nGET /other HTTP/1.1")], b"abc"),
    ("authority and host differ", [("host", "elsewhere.example")], b"abc"),
])
def test_h2_smuggling_never_reaches_backend(proxy, recorder, name, extra, body):
    s = proxy("--proxy", f"/={recorder.url()}")
    events = h2_request(s.port, base_headers(s.port, extra), body=body, validate=False)
    refused = [e for e in events if isinstance(e, (h2.events.StreamReset, h2.events.ConnectionTerminated))]
    statuses = [dict(e.headers).get(b":status") for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert refused or statuses == [b"400"], (name, events)
    time.sleep(1.0)  # anything forwarded would have reached the backend by now
    assert recorder.received() == b"", name
    # the same proxy forwards a proper request to the same recorder: "nothing" meant something
    good = h2_request(s.port, base_headers(s.port, [("content-length", "3")]), body=b"abc")
    assert any(isinstance(e, h2.events.StreamEnded) for e in good)
    assert recorder.requests and recorder.requests[-1][1] == b"abc"


# ---- https backends ---------------------------------------------------------------------------

def test_https_backend_over_h2(proxy, tmp_path):
    """Another rill serve is the TLS backend: ALPN gives h2 (its access log says HTTP/2), and an
    unverified certificate is refused unless --proxy-insecure."""
    root = tmp_path / "site"
    root.mkdir()
    data = random.Random(9).randbytes(2 * MIB)
    (root / "f.bin").write_bytes(data)
    log = tmp_path / "backend.log"
    backend = start_server(str(tmp_path), root=str(root), access_log=str(log))
    try:
        s = proxy("--proxy", f"/=https://localhost:{backend.tls_port}", "--proxy-insecure")
        r = curl(s.url("/f.bin"), timeout=120)
        assert r.returncode == 0 and sha(r.stdout) == sha(data), r.stderr
        strict = proxy("--proxy", f"/=https://localhost:{backend.tls_port}")
        r = curl(strict.url("/f.bin"), "-o", "/dev/null", "-w", "%{http_code}")
        assert r.stdout == b"502"
        assert f"https://localhost:{backend.tls_port}" in strict.stderr()
    finally:
        assert backend.stop() == 0
    assert "HTTP/2" in log.read_text()


# ---- back-pressure: neither direction is held in the proxy's memory ---------------------------

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_slow_reader_holds_the_backend_not_memory(proxy, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    size = 200 * MIB
    with open(root / "huge.bin", "wb") as f:
        f.truncate(size)
    be = FilesBackend(str(root))
    try:
        s = proxy("--proxy", f"/=http://127.0.0.1:{be.port}", tls=False)
        assert curl(s.url("/none"), "-o", "/dev/null").returncode == 0  # warm up
        before = rss_kib(s.proc.pid)
        for front in ("h1", "h2"):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            if front == "h1":
                c.sendall(b"GET /huge.bin HTTP/1.1\r\nhost: x\r\n\r\n")
            else:
                conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
                conn.initiate_connection()
                conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2 ** 31 - 1})
                conn.increment_flow_control_window(2 ** 30)
                conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "x"),
                                      (":path", "/huge.bin")], end_stream=True)
                c.sendall(conn.data_to_send())
            time.sleep(3)  # reading nothing: the proxy must stop reading the backend
            grown = rss_kib(s.proc.pid) - before
            assert grown < 64 * 1024, (front, grown)
            c.close()
    finally:
        be.stop()


class Sink(Recorder):
    """Takes a connection and reads nothing from it."""

    def serve(self, c, record):
        self.held = getattr(self, "held", []) + [c]


def test_slow_backend_holds_the_client_not_memory(proxy, tmp_path):
    be = Sink()
    try:
        s = proxy("--proxy", f"/={be.url()}", tls=False)
        before = rss_kib(s.proc.pid)
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            up = subprocess.Popen(["curl", "-sS", *args, "-H", "Expect:", "-T", "-",
                                   s.url("/up")], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            sent = 0
            chunk = b"z" * MIB

            def feed():
                nonlocal sent
                try:
                    while sent < 200 * MIB:
                        up.stdin.write(chunk)
                        sent += len(chunk)
                except (BrokenPipeError, ValueError):
                    pass
            t = threading.Thread(target=feed, daemon=True)
            t.start()
            time.sleep(4)
            grown = rss_kib(s.proc.pid) - before
            assert up.poll() is None  # still uploading: not refused...
            assert sent < 200 * MIB  # ...but held back...
            assert grown < 64 * 1024, (args, grown)  # ...and the proxy holds little of it
            up.kill()
            up.wait()
            t.join(10)
    finally:
        be.stop()


# ---- shutdown with requests in flight ---------------------------------------------------------

def test_shutdown_with_a_request_in_flight(tmp_path):
    """SIGTERM while a backend hangs: the proxy exits 0 after --shutdown-timeout (in the ASan
    build: without a leak)."""
    be = Recorder(respond=None)
    try:
        s = start_server(str(tmp_path), tls=False,
                         extra=["--proxy", f"/={be.url()}", "--shutdown-timeout", "500"])
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n")
        deadline = time.monotonic() + 30
        while not be.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert be.requests
        assert s.stop() == 0, s.stderr()
        c.close()
    finally:
        be.stop()


# ---- details of the exchange ------------------------------------------------------------------

def test_h2_cookies_joined_for_http1_backend(proxy, recorder):
    s = proxy("--proxy", f"/={recorder.url()}")
    events = h2_request(s.port, [(":method", "GET"), (":scheme", "http"),
                                 (":authority", f"127.0.0.1:{s.port}"), (":path", "/c"),
                                 ("cookie", "a=1"), ("x-other", "y"), ("cookie", "b=2"),
                                 ("cookie", "c=3")])
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    fields = head_fields(recorder.requests[0][0])[1]
    assert [v for n, v in fields if n == b"cookie"] == [b"a=1; b=2; c=3"]


def test_response_via_and_hop_fields(proxy):
    be = Recorder(respond=b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: x-secret\r\n"
                          b"x-secret: 1\r\nkeep-alive: timeout=3\r\nx-fine: yes\r\n\r\nok")
    try:
        s = proxy("--proxy", f"/={be.url()}")
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            r = curl("-i", *args, s.url("/"))
            head = r.stdout.split(b"\r\n\r\n")[0].lower()
            assert b"via: 1.1 rill" in head and b"x-fine: yes" in head, head
            assert b"x-secret" not in head and b"keep-alive" not in head, head
    finally:
        be.stop()


def test_head_and_not_modified(proxy, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    (root / "f.txt").write_bytes(b"x" * 1000)
    be = FilesBackend(str(root))
    try:
        s = proxy("--proxy", f"/=http://127.0.0.1:{be.port}")
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            r = curl(*args, "-I", s.url("/f.txt"))
            assert r.returncode == 0 and b"content-length: 1000" in r.stdout.lower(), r
            r = curl(*args, s.url("/f.txt"), "-H", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT",
                     "-w", "%{http_code}")
            assert r.returncode == 0 and r.stdout == b"304", r
    finally:
        be.stop()


def test_backend_connections_are_reused(proxy, recorder):
    s = proxy("--proxy", f"/={recorder.url()}")
    urls = [s.url(f"/k{i}") for i in range(10)]
    r = curl("--http1.1", *urls)  # one front connection: one worker, one backend connection
    assert r.returncode == 0 and r.stdout == b"ok" * 10
    assert len(recorder.requests) == 10 and len(recorder.conns) == 1


def test_slow_http1_request_does_not_hold_up_others(proxy):
    """HTTP/1.1 backends take one request at a time per connection: a request that hangs there
    must not queue the next ones behind it (the proxy opens another connection)."""
    be = Recorder(respond=lambda head, body: None if head.startswith(b"GET /hang ") else
                  b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nquick")
    try:
        s = proxy("--proxy", f"/={be.url()}")
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=20)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "x"),
                              (":path", "/hang")], end_stream=True)
        sock.sendall(conn.data_to_send())
        deadline = time.monotonic() + 20
        while not be.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        for sid in (3, 5, 7):  # on the same connection, so on the same worker
            conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "x"),
                                    (":path", f"/q{sid}")], end_stream=True)
        sock.sendall(conn.data_to_send())
        ended = set()
        while ended != {3, 5, 7}:
            data = sock.recv(65536)  # the socket's timeout (20 s) fails the test
            assert data
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.StreamEnded):
                    ended.add(ev.stream_id)
            sock.sendall(conn.data_to_send())
        assert 1 not in ended
        sock.close()
    finally:
        be.stop()


def test_many_requests_h2load(proxy, recorder):
    """h2load: 2000 requests, 4 connections of 20 concurrent streams each, to an HTTP/1.1 and an
    HTTP/2 backend; every one must succeed."""
    be = H2Backend()
    try:
        s = proxy("--proxy", f"/h1={recorder.url()}", "--proxy", f"/h2=h2c://127.0.0.1:{be.port}")
        for path in ("/h1/x", "/h2/x"):
            r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "20", s.url(path)],
                               capture_output=True, timeout=300)
            out = r.stdout.decode(errors="replace")
            assert "2000 succeeded" in out, out
        assert len(recorder.conns) <= 2 * 64  # a pool per worker, bounded
    finally:
        be.stop()


def test_https_backend_over_http1(proxy, tmp_path):
    """A TLS backend that offers no ALPN (Python's http.server behind ssl) is spoken to over
    HTTP/1.1."""
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-days", "2", "-keyout", str(key), "-out", str(cert)], check=True,
                   capture_output=True, timeout=60)
    root = tmp_path / "files"
    root.mkdir()
    data = random.Random(11).randbytes(MIB)
    (root / "f.bin").write_bytes(data)
    be = FilesBackend(str(root))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    be.httpd.socket = ctx.wrap_socket(be.httpd.socket, server_side=True)
    try:
        s = proxy("--proxy", f"/=https://localhost:{be.port}", "--proxy-insecure")
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            r = curl(*args, "-D", "-", s.url("/f.bin"), "-o", str(tmp_path / "out.bin"))
            assert r.returncode == 0, r.stderr
            assert b"via: 1.1 rill" in r.stdout.lower()
            assert sha((tmp_path / "out.bin").read_bytes()) == sha(data)
    finally:
        be.stop()


def test_root_and_proxy_for_slash_conflict_exits_2(tmp_path):
    r = subprocess.run([RILL_BIN, "serve", "--listen", "127.0.0.1:0", "--tls-listen", "none",
                        "--root", str(tmp_path), "--proxy", "/=http://127.0.0.1:1"],
                       capture_output=True, timeout=30)
    assert r.returncode == 2 and b"--root" in r.stderr.splitlines()[0]


def test_unreachable_backend_skipped_for_safe_requests(proxy, refused_port):
    dead = refused_port
    token = os.urandom(8).hex().encode()  # an answer from any other server would show
    recorder = Recorder(respond=b"HTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\n" + token)
    try:
        s = proxy("--proxy", f"/={recorder.url()},http://127.0.0.1:{dead}")
        for args in (["--http1.1"], ["--http2-prior-knowledge"]):
            for _ in range(3):
                r = curl(*args, s.url("/get"))
                assert r.returncode == 0 and r.stdout == token, (r, s.stderr())
        assert len(recorder.requests) == 6, s.stderr()
        assert f"http://127.0.0.1:{dead}" in s.stderr() and "trying" in s.stderr()
        # the dead one is now skipped (passive health), so a POST finds the live one
        codes = {curl(s.url("/post"), "-d", "x", "-o", "/dev/null", "-w", "%{http_code}").stdout
                 for _ in range(2)}
        assert codes == {b"200"}
    finally:
        recorder.stop()


def test_post_to_an_unreachable_backend_is_not_replayed(proxy, recorder, refused_port):
    dead = refused_port
    s = proxy("--proxy", f"/={recorder.url()},http://127.0.0.1:{dead}")
    # the turns alternate: one of the two POSTs meets the dead backend first and gets the 502
    codes = [curl(s.url("/post"), "-d", "x", "-o", "/dev/null", "-w", "%{http_code}").stdout
             for _ in range(2)]
    assert sorted(codes) == [b"200", b"502"]
    assert len(recorder.requests) == 1
    assert "trying" not in s.stderr()


def test_http10_front_gets_a_whole_body_from_a_chunked_backend(proxy):
    be = Recorder(respond=b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                          b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    try:
        s = proxy("--proxy", f"/={be.url()}")
        c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        c.sendall(b"GET /old HTTP/1.0\r\nHost: legacy\r\n\r\n")
        got = b""
        while True:
            data = c.recv(65536)
            if not data:
                break
            got += data
        c.close()
        head, body = got.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0]
        assert b"chunked" not in head.lower() and body == b"hello world"
        fields = dict(head_fields(be.requests[0][0])[1])
        assert fields[b"via"] == b"1.0 rill" and fields[b"host"] == b"legacy"
    finally:
        be.stop()


def test_https_h2_backend_gets_te_trailers_and_sends_trailers(proxy, tmp_path):
    """An https:// backend that chose h2 by ALPN: trailers come back, and once the worker knows
    the backend speaks HTTP/2, `te: trailers` goes on (gRPC over TLS)."""
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-days", "2", "-keyout", str(key), "-out", str(cert)], check=True,
                   capture_output=True, timeout=60)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["h2"])
    be = H2Backend(tls=ctx)
    try:
        s = proxy("--proxy", f"/=https://localhost:{be.port}", "--proxy-insecure", "--threads", "1")
        for _ in range(3):
            events = h2_request(s.port, [(":method", "POST"), (":scheme", "http"),
                                         (":authority", "x"), (":path", "/trailers"),
                                         ("te", "trailers")], body=b"\0\0\0\0\0")
            trailers = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
            assert trailers and dict(trailers[0].headers)[b"grpc-status"] == b"0", events
        assert len(be.heads) == 3
        assert (b"te", b"trailers") in be.heads[-1]
    finally:
        be.stop()


# ---- request trailers --------------------------------------------------------------------------

SENT_TRAILERS = [("x-checksum", "sha256=abc123"), ("x-multi", "1"), ("x-multi", "2"),
                 ("authorization", "secret"), ("content-type", "x/y"), ("x-forwarded-for", "6.6.6.6"),
                 ("via", "1.1 evil"), ("host", "elsewhere")]
KEPT_TRAILERS = [(b"x-checksum", b"sha256=abc123"), (b"x-multi", b"1"), (b"x-multi", b"2")]


def h2_post_with_trailers(port, body, pieces_seed, length, trailers=SENT_TRAILERS, timeout=30):
    """A python-h2 client: POST /echo with body as DATA cut at random points, then trailers
    (HEADERS with END_STREAM). Returns (status, response body)."""
    rng = random.Random(pieces_seed)
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False))
    conn.initiate_connection()
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"),
               (":path", "/echo")]
    if length:
        headers.append(("content-length", str(len(body))))
    conn.send_headers(1, headers)
    points = sorted(rng.randrange(len(body) + 1) for _ in range(rng.randrange(1, 6)))
    for a, b in zip([0] + points, points + [len(body)]):
        conn.send_data(1, body[a:b])
        sock.sendall(conn.data_to_send())
    conn.send_headers(1, trailers, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, got, done = None, b"", False
    try:
        while not done:
            data = sock.recv(65536)
            assert data, "the proxy closed the connection"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[b":status"]
                elif isinstance(ev, h2.events.DataReceived):
                    got += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    done = True
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()
    return status, got


@pytest.mark.parametrize("length", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_request_trailers_to_h2c_backend(proxy, length, seed):
    """An HTTP/2 client's trailers reach an HTTP/2 backend as a trailing HEADERS: the safe fields
    exactly, in order; framing, authentication, content and forwarding fields stay behind."""
    be = H2Backend()
    try:
        s = proxy("--proxy", f"/=h2c://127.0.0.1:{be.port}")
        body = random.Random(seed).randbytes(random.Random(seed).choice([0, 1, 1000, 40_000]))
        status, got = h2_post_with_trailers(s.port, body, seed, length)
        assert status == b"200" and got == body
        head, received, trailers = be.requests[-1]
        assert received == body
        assert trailers == KEPT_TRAILERS, trailers
        assert (b"content-length" in head) == length
    finally:
        be.stop()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_request_trailers_to_http1_backend_chunked(proxy, recorder, seed):
    """...and to an HTTP/1.1 backend as the chunked body's trailer section, byte for byte."""
    s = proxy("--proxy", f"/={recorder.url()}")
    body = random.Random(seed).randbytes(random.Random(seed).choice([0, 1, 1000, 40_000]))
    status, got = h2_post_with_trailers(s.port, body, seed, length=False)
    assert status == b"200" and got == b"ok"
    head, received = recorder.requests[-1]
    assert received == body
    assert b"transfer-encoding: chunked\r\n" in head.lower()
    raw = recorder.received()
    assert raw.endswith(b"0\r\nx-checksum: sha256=abc123\r\nx-multi: 1\r\nx-multi: 2\r\n\r\n"), raw[-200:]


def test_request_trailers_dropped_for_a_body_with_length_to_http1(proxy, recorder):
    """A body sent with its content-length cannot carry trailers over HTTP/1.1: they stay
    behind, with a line on stderr; the body goes whole."""
    s = proxy("--proxy", f"/={recorder.url()}")
    body = b"x" * 5000
    status, got = h2_post_with_trailers(s.port, body, 7, length=True)
    assert status == b"200" and got == b"ok"
    head, received = recorder.requests[-1]
    assert received == body and b"content-length: 5000" in head.lower()
    assert b"x-checksum" not in recorder.received()
    assert "the request's trailers dropped" in s.stderr()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_http1_chunked_request_trailers_to_h2c_backend(proxy, seed):
    """An HTTP/1.1 client's chunked trailer section (the request cut at random points) reaches an
    HTTP/2 backend as a trailing HEADERS."""
    be = H2Backend()
    try:
        s = proxy("--proxy", f"/=h2c://127.0.0.1:{be.port}", tls=False)
        req = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: sha256=abc123\r\n"
               b"x-multi: 1\r\nX-Multi: 2\r\nAuthorization: secret\r\nContent-Length: 3\r\n\r\n")
        rng = random.Random(seed)
        points = sorted(rng.randrange(len(req)) for _ in range(6))
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for a, b in zip([0] + points, points + [len(req)]):
                c.sendall(req[a:b])
                time.sleep(0.01)
            buf = b""
            while not buf.endswith(b"hello world"):
                d = c.recv(65536)
                assert d, buf
                buf += d
        head, received, trailers = be.requests[-1]
        assert received == b"hello world"
        assert trailers == KEPT_TRAILERS, trailers
    finally:
        be.stop()
