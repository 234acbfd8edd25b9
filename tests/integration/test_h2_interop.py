"""The rill HTTP/2 session (server role) against an independent peer: python3-h2 over a real socket,
through tests/tools/h2_testserver. Also nghttp (nghttp2-client) when installed."""
import os
import shutil
import socket
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

TOOLS = os.environ.get("RILL_TOOLS") or os.path.join(os.path.dirname(__file__), "..", "..", "build", "tests")


@pytest.fixture
def testserver():
    procs = []

    def start(*args):
        proc = subprocess.Popen([os.path.join(TOOLS, "h2_testserver"), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        return int(line.split()[1])

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


class Client:
    """A blocking python3-h2 client: collects events per stream."""

    def __init__(self, port, settings=None, window=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.sock.sendall(self.conn.data_to_send())
        self.streams = {}
        self.pushes = {}
        self.goaway = None
        self.remote_settings = None
        self.auto_ack = True
        self.closed = False

    def request(self, path, method="GET", body=None, headers=(), end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "localhost")]
        hdrs += list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        self.streams[sid] = {"headers": [], "data": b"", "trailers": None, "ended": False, "reset": None}
        if body is not None:
            self.send_body(sid, body, end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        """Sends as much as the flow-control windows allow, reading in between."""
        off = 0
        while off < len(body):
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window <= 0:
                self.flush()
                self.read_once()
                continue
            chunk = body[off:off + window]
            self.conn.send_data(sid, chunk)
            off += len(chunk)
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read_once(self):
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(data)
        for ev in events:
            self.handle(ev)
        self.flush()
        return events

    def handle(self, ev):
        if isinstance(ev, (h2.events.ResponseReceived, h2.events.InformationalResponseReceived)):
            self.streams.setdefault(ev.stream_id, {"headers": [], "data": b"", "trailers": None,
                                                   "ended": False, "reset": None})
            self.streams[ev.stream_id]["headers"].append(dict(ev.headers))
        elif isinstance(ev, h2.events.DataReceived):
            self.streams[ev.stream_id]["data"] += ev.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            self.streams[ev.stream_id]["trailers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            self.streams[ev.stream_id]["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            self.streams.setdefault(ev.stream_id, {"headers": [], "data": b"", "trailers": None,
                                                   "ended": False, "reset": None})
            self.streams[ev.stream_id]["reset"] = ev.error_code
        elif isinstance(ev, h2.events.PushedStreamReceived):
            self.pushes[ev.pushed_stream_id] = dict(ev.headers)
            self.streams[ev.pushed_stream_id] = {"headers": [], "data": b"", "trailers": None,
                                                 "ended": False, "reset": None}
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            self.remote_settings = ev

    def wait(self, *sids, timeout=10):
        deadline = time.monotonic() + timeout
        while not all(self.streams[s]["ended"] or self.streams[s]["reset"] is not None for s in sids):
            assert time.monotonic() < deadline, "timed out"
            if not self.read_once() and self.closed:
                break
        return [self.streams[s] for s in sids]

    def close(self):
        self.sock.close()


def test_settings_exchange_and_simple_get(testserver):
    port = testserver()
    c = Client(port)
    sid = c.request("/size/10")
    (st,) = c.wait(sid)
    assert st["headers"][0][":status"] == "200"
    assert st["data"] == b"abcdefghij"
    assert c.remote_settings is not None
    c.close()


def test_echo_request_body(testserver):
    port = testserver()
    c = Client(port)
    body = bytes(range(256)) * 1000  # 256 KB, beyond the default 64 KiB windows
    sid = c.request("/echo", method="POST", body=body)
    (st,) = c.wait(sid)
    assert st["headers"][0]["content-length"] == str(len(body))
    assert st["data"] == body
    c.close()


def test_large_response_and_trailers(testserver):
    port = testserver()
    c = Client(port)
    big = c.request("/size/1000000")
    tr = c.request("/trailers")
    st_big, st_tr = c.wait(big, tr)
    assert len(st_big["data"]) == 1000000
    assert st_big["data"][:26] == b"abcdefghijklmnopqrstuvwxyz"
    assert st_tr["data"] == b"data"
    assert st_tr["trailers"] == {"x-trailer": "yes"}
    c.close()


def test_request_trailers(testserver):
    port = testserver()
    c = Client(port)
    sid = c.request("/echo", method="POST", body=b"payload", end=False)
    c.conn.send_headers(sid, [("x-checksum", "abc")], end_stream=True)
    c.flush()
    (st,) = c.wait(sid)
    assert st["data"] == b"payload"
    c.close()


def test_large_headers_both_directions(testserver):
    port = testserver()
    c = Client(port)
    # 30 KB of request headers: python3-h2 splits them over HEADERS + CONTINUATION frames
    sid = c.request("/headers", headers=[("x-large", "v" * 30000)])
    big = c.request("/bigheaders/40000")
    st, st_big = c.wait(sid, big)
    assert b"x-large: " + b"v" * 30000 in st["data"]
    assert st_big["headers"][0]["x-big"] == "h" * 40000
    c.close()


def test_flow_control_stall_and_resume(testserver):
    port = testserver()
    c = Client(port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    c.auto_ack = False
    sid = c.request("/size/50000")
    got = 0
    deadline = time.monotonic() + 10
    while got < 1000:
        assert time.monotonic() < deadline
        c.read_once()
        got = len(c.streams[sid]["data"])
    # the server stops at the window: nothing more arrives until we open it
    c.sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        c.read_once()
    assert len(c.streams[sid]["data"]) == 1000
    c.sock.settimeout(10)
    # acknowledge slowly, 1000 bytes at a time
    while not c.streams[sid]["ended"]:
        pending = len(c.streams[sid]["data"]) - c.streams[sid].get("acked", 0)
        if pending:
            c.conn.acknowledge_received_data(pending, sid)
            c.streams[sid]["acked"] = c.streams[sid].get("acked", 0) + pending
            c.flush()
        c.read_once()
    assert len(c.streams[sid]["data"]) == 50000
    c.close()


def test_many_concurrent_streams(testserver):
    port = testserver()
    c = Client(port)
    sids = [c.request(f"/size/{1000 + i}") for i in range(100)]
    results = c.wait(*sids)
    for i, st in enumerate(results):
        assert st["headers"][0][":status"] == "200"
        assert len(st["data"]) == 1000 + i
    c.close()


def test_informational_and_push(testserver):
    port = testserver()
    c = Client(port)
    sid = c.request("/info")
    (st,) = c.wait(sid)
    assert [h[":status"] for h in st["headers"]] == ["103", "200"]
    sid = c.request("/push")
    (st,) = c.wait(sid)
    assert st["data"] == b"main"
    assert len(c.pushes) == 1
    pid = next(iter(c.pushes))
    assert c.pushes[pid][":path"] == "/pushed"
    (pst,) = c.wait(pid)
    assert pst["data"] == b"pushed"
    c.close()


def read_frames(sock, buf=b""):
    """Yields hyperframe frames read from a raw socket."""
    import hyperframe.frame
    while True:
        while len(buf) < 9:
            more = sock.recv(65536)
            if not more:
                return
            buf += more
        frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(buf[:9]))
        while len(buf) < 9 + length:
            more = sock.recv(65536)
            if not more:
                return
            buf += more
        frame.parse_body(memoryview(buf[9:9 + length]))
        buf = buf[9 + length:]
        yield frame


def test_graceful_goaway_two_steps(testserver):
    """python3-h2 treats any GOAWAY as final, so this peer speaks raw frames (hyperframe + hpack)."""
    import hpack
    import hyperframe.frame as hf
    port = testserver()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    enc = hpack.Encoder()
    hdrs = enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/shutdown"),
                       (":authority", "localhost")])
    h = hf.HeadersFrame(1, hdrs)
    h.flags.add("END_HEADERS")
    h.flags.add("END_STREAM")
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + hf.SettingsFrame(0).serialize() + h.serialize())
    goaways = []
    for f in read_frames(sock):
        if isinstance(f, hf.SettingsFrame) and "ACK" not in f.flags:
            ack = hf.SettingsFrame(0)
            ack.flags.add("ACK")
            sock.sendall(ack.serialize())
        elif isinstance(f, hf.GoAwayFrame):
            goaways.append((f.last_stream_id, f.error_code))
            if len(goaways) == 2:
                break
        elif isinstance(f, hf.PingFrame) and "ACK" not in f.flags:
            assert goaways == [(0x7fffffff, 0)]  # step one comes with the PING
            pong = hf.PingFrame(0, f.opaque_data)
            pong.flags.add("ACK")
            sock.sendall(pong.serialize())
    assert goaways == [(0x7fffffff, 0), (1, 0)]
    sock.close()


def test_protocol_error_gets_goaway(testserver):
    port = testserver()
    c = Client(port)
    c.flush()
    # a DATA frame on stream 0 (raw bytes, python3-h2 would not produce it)
    c.sock.sendall(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
    deadline = time.monotonic() + 10
    while c.goaway is None and not c.closed:
        assert time.monotonic() < deadline
        c.read_once()
    assert c.goaway is not None
    assert c.goaway.error_code == 1  # PROTOCOL_ERROR
    c.close()


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp not installed")
def test_nghttp_client(testserver):
    port = testserver()
    out = subprocess.run(["nghttp", "-n", "-s", f"http://127.0.0.1:{port}/size/2000000",
                          f"http://127.0.0.1:{port}/trailers", f"http://127.0.0.1:{port}/info"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(["nghttp", "-d", "-", f"http://127.0.0.1:{port}/echo"], input="hello nghttp",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello nghttp"
