"""HTTP/1.1 pipelining to backends (`rill serve --proxy-pipeline N`, `pipeline:` in --config): the
GETs and HEADs of one burst leave on one backend connection before their answers, each client gets
its own answer, and requests a backend closed on unanswered go again. The backend here is raw: it
records, per request, how many earlier requests of its connection were still unanswered when it
arrived, so pipelining (or its absence) is seen in the bytes the backend got."""
import select
import signal
import socket
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import pytest

from conftest import RILL_BIN
from server_fixtures import start_server


class PipelineBackend:
    """Answers each request in order, `delay` seconds after the answer before it, with the
    request's path as the body (a HEAD gets the length only). close_after: close a connection after
    answering this many requests on it (its first connection only). piece: each answer written
    this many bytes at a time (0: whole), so that the proxy reads it in pieces."""

    def __init__(self, delay=0.02, close_after=None, piece=0):
        self.delay = delay
        self.close_after = close_after
        self.piece = piece
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.seen = []   # (connection number, method, path, unanswered ahead of it on arrival)
        self.nconns = 0
        self.stopping = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.nconns += 1
                n = self.nconns
            threading.Thread(target=self.serve, args=(c, n), daemon=True).start()

    def serve(self, c, conn_no):
        buf = b""
        queue = []
        answered = 0
        last = time.monotonic()
        try:
            while True:
                wait = max(0.0, last + self.delay - time.monotonic()) if queue else 5.0
                r, _, _ = select.select([c], [], [], wait)
                if r:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                    while b"\r\n\r\n" in buf:
                        head, buf = buf.split(b"\r\n\r\n", 1)
                        method, path = head.split(b" ")[:2]
                        with self.lock:
                            self.seen.append((conn_no, method.decode(), path.decode(), len(queue)))
                        queue.append((method, path))
                if queue and time.monotonic() >= last + self.delay:
                    method, path = queue.pop(0)
                    body = b"" if method == b"HEAD" else path
                    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(path), body)
                    step = self.piece or len(answer)
                    for at in range(0, len(answer), step):
                        c.sendall(answer[at:at + step])
                        if self.piece:
                            time.sleep(0.0005)
                    answered += 1
                    last = time.monotonic()
                    if self.close_after and conn_no == 1 and answered == self.close_after:
                        return
        finally:
            c.close()

    def stop(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def burst(port, requests, timeout=30):
    """Sends every (method, path) at once on one h2c connection (one write); returns
    {stream: (method, path, status, body)} once all ended."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    streams = {}
    for i, (method, path) in enumerate(requests):
        sid = 1 + 2 * i
        conn.send_headers(sid, [(":method", method), (":path", path), (":scheme", "http"),
                                (":authority", "localhost")], end_stream=True)
        streams[sid] = [method, path, None, b""]
    sock.sendall(conn.data_to_send())
    ended = set()
    deadline = time.monotonic() + timeout
    try:
        while len(ended) < len(streams) and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    streams[ev.stream_id][2] = dict(ev.headers)[b":status"].decode()
                elif isinstance(ev, h2.events.DataReceived):
                    streams[ev.stream_id][3] += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended.add(ev.stream_id)
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()
    assert len(ended) == len(streams), f"only {len(ended)} of {len(streams)} streams ended"
    return streams


def assert_each_got_its_own(streams):
    for method, path, status, body in streams.values():
        assert status == "200", (method, path, status)
        assert body == (b"" if method == "HEAD" else path.encode()), (method, path, body)


@pytest.fixture
def backend():
    made = []

    def make(**kw):
        b = PipelineBackend(**kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(*args):
        s = start_server(str(tmp_path), tls=False, extra=args, threads=1)
        servers.append(s)
        return s

    yield start
    for s in servers:
        assert s.stop() == 0, s.stderr()


REQUESTS = [("GET", f"/p{i}") for i in range(12)] + [("HEAD", "/h12")] + \
           [("GET", f"/p{i}") for i in range(13, 16)]


@pytest.mark.parametrize("piece", [0, 7])
def test_burst_goes_pipelined_on_few_connections(serve, backend, piece):
    be = backend(piece=piece)
    s = serve("--proxy-pipeline", "8", "--proxy", f"/=http://127.0.0.1:{be.port}")
    streams = burst(s.port, REQUESTS)
    assert_each_got_its_own(streams)
    assert sorted(p for _, _, p, _ in be.seen) == sorted(p for _, p in REQUESTS)
    ahead = max(a for _, _, _, a in be.seen)
    assert ahead >= 3, be.seen  # several sent before the answer ahead of them
    assert ahead <= 7, be.seen  # never more than the depth on one connection
    assert be.nconns <= 4, be.seen  # 16 requests in flight at once, 8 per connection


def test_without_the_flag_one_request_at_a_time(serve, backend):
    be = backend()
    s = serve("--proxy", f"/=http://127.0.0.1:{be.port}")
    assert_each_got_its_own(burst(s.port, REQUESTS))
    assert all(a == 0 for _, _, _, a in be.seen), be.seen


def test_only_get_and_head_go_behind(serve, backend):
    be = backend()
    s = serve("--proxy-pipeline", "8", "--proxy", f"/=http://127.0.0.1:{be.port}")
    mixed = [("GET", "/a"), ("DELETE", "/b"), ("GET", "/c"), ("OPTIONS", "/d"), ("GET", "/e")]
    assert_each_got_its_own(burst(s.port, mixed))
    for _, method, path, ahead in be.seen:
        if method not in ("GET", "HEAD"):
            assert ahead == 0, be.seen


@pytest.mark.parametrize("piece", [0, 1])
def test_unanswered_pipelined_requests_go_again(serve, backend, piece):
    """The backend closes its first connection after three answers with more pipelined on it:
    the unanswered ones go again and every client still gets its own answer."""
    be = backend(close_after=3, piece=piece)
    s = serve("--proxy-pipeline", "8", "--proxy", f"/=http://127.0.0.1:{be.port}")
    streams = burst(s.port, REQUESTS[:8])
    assert_each_got_its_own(streams)
    first = [p for c, _, p, _ in be.seen if c == 1]
    assert len(first) > 3, be.seen  # pipelined there, beyond what it answered
    again = [p for c, _, p, _ in be.seen if c != 1]
    assert set(first[3:]) <= set(again), be.seen


def test_config_file_pipeline_and_bad_values(serve, backend, tmp_path):
    be = backend()
    conf = tmp_path / "proxy.yaml"
    conf.write_text(f"routes:\n  - prefix: /\n    backends: [http://127.0.0.1:{be.port}]\n"
                    f"    pipeline: 4\n")
    s = serve("--config", str(conf))
    streams = burst(s.port, REQUESTS[:8])
    assert_each_got_its_own(streams)
    ahead = max(a for _, _, _, a in be.seen)
    assert 1 <= ahead <= 3, be.seen
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"routes:\n  - prefix: /\n    backends: [http://127.0.0.1:{be.port}]\n"
                   f"    pipeline: 65\n")
    r = subprocess.run([RILL_BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(bad)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "bad.yaml:4:" in r.stderr and "pipeline" in r.stderr, r.stderr
    r = subprocess.run([RILL_BIN, "serve", "--proxy-pipeline", "0"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and "--proxy-pipeline" in r.stderr


def test_reload_turns_pipelining_on(serve, backend, tmp_path):
    """SIGHUP with `pipeline: 8` in place of none: the next burst goes pipelined (a pool of its
    own for the new depth), the earlier one went one request at a time."""
    be = backend()
    conf = tmp_path / "proxy.yaml"
    route = f"routes:\n  - prefix: /\n    backends: [http://127.0.0.1:{be.port}]\n"
    conf.write_text(route)
    s = serve("--config", str(conf))
    assert_each_got_its_own(burst(s.port, REQUESTS[:8]))
    assert all(a == 0 for _, _, _, a in be.seen), be.seen
    seen_before = len(be.seen)
    conf.write_text(route + "    pipeline: 8\n")
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "configuration reloaded" not in s.stderr() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "configuration reloaded" in s.stderr(), s.stderr()
    assert_each_got_its_own(burst(s.port, REQUESTS[:8]))
    assert max(a for _, _, _, a in be.seen[seen_before:]) >= 2, be.seen
