"""HTTP/2 with real peers: nghttp, h2load, python-h2 over a raw socket (many streams, flow
control, large uploads to the echo example, trailers, 103, push) and Node's http2 client."""
import json
import re
import socket
import ssl
import subprocess
import time
from collections import defaultdict

import h2.config
import h2.errors
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.settings import SettingCodes

from server_fixtures import SMALL, node, parse_h2load, sha256


class Stream:
    def __init__(self):
        self.informational, self.headers, self.trailers = [], None, None
        self.data = bytearray()
        self.ended, self.reset = False, None


class H2Client:
    """python-h2 over a socket. auto_ack: give back flow-control credit as data arrives."""

    def __init__(self, port, tls=False, settings=None, auto_ack=True):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        self.sock, self.auto_ack = sock, auto_ack
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        if settings:  # in the very first SETTINGS frame
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()
        self.streams = defaultdict(Stream)
        self.pushes = {}
        self.events = []
        self.goaway = None
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=(), end=True):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", method), (":scheme", "http"),
                                     (":authority", "localhost"), (":path", path), *headers],
                               end_stream=end)
        self.flush()
        return sid

    def pump(self, until, timeout=20, idle=None):
        """Reads and handles frames until until() holds; with idle, returns False once nothing
        arrived for that long. Raises on timeout."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            assert left > 0, "timed out waiting for the server"
            self.sock.settimeout(min(left, idle) if idle else left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if idle:
                    return False
                raise
            if not data:
                raise ConnectionError("server closed the connection")
            for ev in self.conn.receive_data(data):
                self.handle(ev)
            self.flush()
        return True

    def handle(self, ev):
        self.events.append(ev)
        if isinstance(ev, h2.events.InformationalResponseReceived):
            self.streams[ev.stream_id].informational.append(dict(ev.headers))
        elif isinstance(ev, h2.events.ResponseReceived):
            self.streams[ev.stream_id].headers = dict(ev.headers)
        elif isinstance(ev, h2.events.TrailersReceived):
            self.streams[ev.stream_id].trailers = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            self.streams[ev.stream_id].data += ev.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.streams[ev.stream_id].ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self.streams[ev.stream_id].reset = ev.error_code
        elif isinstance(ev, h2.events.PushedStreamReceived):
            self.pushes[ev.pushed_stream_id] = dict(ev.headers)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def done(self, *sids):
        return lambda: all(self.streams[s].ended or self.streams[s].reset is not None for s in sids)

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def h2c(static_server):
    client = H2Client(static_server.port)
    yield client
    client.close()


# ---- nghttp, h2load ----------------------------------------------------------------------------

def test_nghttp_parallel_paths_one_connection(static_server):
    paths = ["/small.txt", "/index.html", "/big.bin", "/page.txt", "/sub/", "/nope"]
    r = subprocess.run(["nghttp", "-nsv", *[static_server.url(p) for p in paths]],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.count("recv SETTINGS frame") >= 1 and "send GOAWAY" in out
    stats = re.findall(r"^\s*(\d+)\s+\+\S+\s+\+\S+\s+\S+\s+(\d+)\s+\S+\s+(\S+)$", out, re.M)
    codes = {path: code for _, code, path in stats}
    assert codes == {"/small.txt": "200", "/index.html": "200", "/big.bin": "200",
                     "/page.txt": "200", "/sub/": "200", "/nope": "404"}
    assert len({sid for sid, _, _ in stats}) == len(paths)  # one stream each, on one connection
    # all requests were sent before the first response finished: really concurrent
    assert out.index("send HEADERS frame <length=", out.index("stream_id=13")) < out.index("recv DATA")


@pytest.mark.parametrize("tls", [False, True])
def test_nghttp_big_file_identical(static_server, site, tls):
    r = subprocess.run(["nghttp", static_server.url("/big.bin", tls)], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert sha256(r.stdout) == sha256(site[1]["big.bin"])


@pytest.mark.parametrize("tls", [False, True])
def test_h2load_smoke(static_server, tls):
    urls = [static_server.url(p, tls) for p in ("/small.txt", "/index.html", "/page.txt")]
    r = subprocess.run(["h2load", "-n", "3000", "-c", "4", "-m", "16", *urls],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = parse_h2load(r.stdout)
    assert res["succeeded"] == 3000 and res["2xx"] == 3000, res
    assert res["failed"] == 0 and res["errored"] == 0 and res["timeout"] == 0
    if tls:
        assert b"Application protocol: h2" in r.stdout


# ---- python-h2 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True])
def test_fifty_concurrent_streams(static_server, site, tls):
    h2c = H2Client(static_server.tls_port if tls else static_server.port, tls=tls)
    big = site[1]["big.bin"]
    wanted = {}
    for i in range(50):
        if i % 3 == 0:
            sid = h2c.request("/small.txt")
            wanted[sid] = SMALL
        elif i % 3 == 1:
            first = i * 20000
            sid = h2c.request("/big.bin", headers=[("range", f"bytes={first}-{first + 49999}")])
            wanted[sid] = big[first:first + 50000]
        else:
            sid = h2c.request("/index.html")
            wanted[sid] = site[1]["index.html"]
    h2c.pump(h2c.done(*wanted))
    for sid, body in wanted.items():
        st = h2c.streams[sid]
        assert st.reset is None and st.headers[":status"] in ("200", "206")
        assert bytes(st.data) == body, sid
    assert h2c.goaway is None
    h2c.close()


def test_cancelled_stream_does_not_disturb_the_others(h2c, site):
    big = site[1]["big.bin"]
    doomed = h2c.request("/big.bin")
    h2c.pump(lambda: len(h2c.streams[doomed].data) > 0)
    h2c.conn.reset_stream(doomed, h2.errors.ErrorCodes.CANCEL)
    h2c.flush()
    after = [h2c.request("/big.bin"), h2c.request("/small.txt")]
    h2c.pump(h2c.done(*after))
    assert sha256(bytes(h2c.streams[after[0]].data)) == sha256(big)
    assert bytes(h2c.streams[after[1]].data) == SMALL
    assert h2c.goaway is None


def test_oversized_header_list_gets_431_over_h2(h2c):
    """(libnghttp2 clients such as curl refuse to send it at all, python-h2 does not.)"""
    sid = h2c.request("/small.txt", headers=[("x-big", "a" * 70000)])
    h2c.pump(h2c.done(sid))
    assert h2c.streams[sid].reset is None
    assert h2c.streams[sid].headers[":status"] == "431"
    after = h2c.request("/small.txt")  # the connection's HPACK state is intact
    h2c.pump(h2c.done(after))
    assert bytes(h2c.streams[after].data) == SMALL


def test_streams_beyond_the_limit_are_refused(static_server, site):
    """Past SETTINGS_MAX_CONCURRENT_STREAMS (100) a stream is refused (RST_STREAM REFUSED_STREAM
    or PROTOCOL_ERROR, RFC 9113 5.1.2), the connection lives on and the others complete. The
    responses are larger than the window so that the streams really stay open."""
    import struct
    from server_fixtures import (DATA, END_STREAM, GOAWAY, HEADERS, RST_STREAM, SETTINGS, RawH2)
    c = RawH2(static_server.port)
    try:
        t, _, _, payload = c.read_frame()
        assert t == SETTINGS
        limits = dict(struct.unpack(">HI", payload[i:i + 6]) for i in range(0, len(payload), 6))
        assert limits.get(3) == 100
        sids = [1 + 2 * i for i in range(150)]
        for sid in sids:
            c.request(sid, "/big.bin", headers=[("range", "bytes=0-99999")])
        ended, reset, got = set(), {}, {}
        while len(ended) + len(reset) < len(sids):
            frame = c.read_frame()
            assert frame is not None, "connection closed"
            t, flags, sid, payload = frame
            assert t != GOAWAY, payload
            if t == DATA:
                got[sid] = got.get(sid, 0) + len(payload)
                if payload:  # give the credit back at once
                    c.window_update(sid, len(payload))
                    c.window_update(0, len(payload))
            if t in (DATA, HEADERS) and flags & END_STREAM:
                ended.add(sid)
            if t == RST_STREAM:
                reset[sid] = struct.unpack(">I", payload)[0]
        assert len(ended) >= 100 and len(reset) >= 1
        assert set(reset.values()) <= {1, 7}  # PROTOCOL_ERROR, REFUSED_STREAM
        assert all(got[sid] == 100000 for sid in ended)
        # and the connection still serves
        c.request(1001, "/small.txt")
        while True:
            t, flags, sid, payload = c.read_frame()
            if sid == 1001 and t == DATA and flags & END_STREAM:
                break
    finally:
        c.close()


def test_flow_control_stall_and_resume(static_server, site):
    big = site[1]["big.bin"]
    c = H2Client(static_server.port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 16384},
                 auto_ack=False)
    try:
        sid = c.request("/big.bin")
        # nothing is acknowledged: exactly one stream window arrives, then the server waits
        # (python-h2 raises FlowControlError if a byte more came)
        assert c.pump(lambda: c.streams[sid].ended, idle=0.7) is False
        assert len(c.streams[sid].data) == 16384
        # another stream still gets through while this one is stalled
        other = c.request("/small.txt")
        c.pump(c.done(other))
        assert bytes(c.streams[other].data) == SMALL
        c.conn.acknowledge_received_data(len(SMALL), other)
        # now give credit back slowly, a little at a time
        given = 0
        while not c.streams[sid].ended:
            got = len(c.streams[sid].data)
            if got > given:
                c.conn.increment_flow_control_window(got - given, sid)
                c.conn.increment_flow_control_window(got - given)
                c.flush()
                given = got
                if given % (512 * 1024) < 16384:
                    time.sleep(0.05)
            c.pump(lambda: c.streams[sid].ended or len(c.streams[sid].data) > given, timeout=20)
        assert len(c.streams[sid].data) == len(big)
        assert sha256(bytes(c.streams[sid].data)) == sha256(big)
    finally:
        c.close()


def send_body(c, sid, body):
    """Sends body within the server's flow-control windows, reading meanwhile."""
    off = 0
    while off < len(body):
        window = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size)
        if window == 0:
            before = c.conn.local_flow_control_window(sid)
            c.pump(lambda: c.conn.local_flow_control_window(sid) > before)
            continue
        n = min(window, len(body) - off)
        c.conn.send_data(sid, body[off:off + n], end_stream=off + n == len(body))
        c.flush()
        off += n
        c.pump(lambda: True)  # nothing to wait for; handles what already arrived


@pytest.mark.parametrize("tls", [False, True])
def test_echo_body_larger_than_windows(echo_server, tls):
    body = bytes(range(256)) * (4 * 1024)  # 1 MiB: over the 256 KiB stream window
    c = H2Client(echo_server.tls_port if tls else echo_server.port, tls=tls)
    try:
        sid = c.request("/echo", method="POST", headers=[("content-type", "application/x-echo")],
                        end=False)
        send_body(c, sid, body)
        c.pump(c.done(sid), timeout=30)
        st = c.streams[sid]
        assert st.reset is None and st.headers[":status"] == "200"
        assert st.headers["content-type"] == "application/x-echo"
        assert len(st.data) == len(body) and bytes(st.data) == body
    finally:
        c.close()


def test_expect_100_continue_over_h2(echo_server, static_server):
    """Expect: 100-continue over HTTP/2: a handler that takes the request gets a 100 sent before
    the body comes (as over HTTP/1.1); one that answers at once (405) sends no 100."""
    c = H2Client(echo_server.port)
    try:
        sid = c.request("/echo", method="POST", end=False,
                        headers=[("content-length", "11"), ("expect", "100-continue")])
        c.pump(lambda: c.streams[sid].informational or c.streams[sid].headers, timeout=10)
        assert c.streams[sid].informational == [{":status": "100"}]
        assert c.streams[sid].headers is None  # the final answer waits for the body
        c.conn.send_data(sid, b"hello world", end_stream=True)
        c.flush()
        c.pump(c.done(sid))
        assert c.streams[sid].headers[":status"] == "200" and bytes(c.streams[sid].data) == b"hello world"
    finally:
        c.close()
    c = H2Client(static_server.port)
    try:
        sid = c.request("/small.txt", method="POST", end=False,
                        headers=[("content-length", "5"), ("expect", "100-continue")])
        c.pump(lambda: c.streams[sid].headers is not None, timeout=10)
        assert c.streams[sid].headers[":status"] == "405" and c.streams[sid].informational == []
    finally:
        c.close()


def test_echo_client_reads_slowly(echo_server):
    """The echo's writes hit the high-water mark: the example pauses the request body, the
    server stops granting window, and everything still arrives once the client reads."""
    body = bytes(reversed(range(256))) * (8 * 1024)  # 2 MiB
    c = H2Client(echo_server.port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 65535},
                 auto_ack=False)
    try:
        sid = c.request("/echo", method="POST", end=False)
        off = 0
        # send until the server stops giving credit (we acknowledge nothing yet)
        while off < len(body):
            window = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size)
            if window == 0:
                if not c.pump(lambda: c.conn.local_flow_control_window(sid) > 0, idle=0.7):
                    break
                continue
            n = min(window, len(body) - off)
            c.conn.send_data(sid, body[off:off + n], end_stream=off + n == len(body))
            c.flush()
            off += n
        assert off < len(body), "the server took 2 MiB while its answer was not being read"
        # read with acknowledgement from now on, and finish sending
        c.auto_ack = True
        c.conn.acknowledge_received_data(len(c.streams[sid].data), sid)
        c.flush()
        send_body(c, sid, body[off:]) if off < len(body) else None
        c.pump(c.done(sid), timeout=30)
        assert bytes(c.streams[sid].data) == body
    finally:
        c.close()


def test_trailers(echo_server):
    c = H2Client(echo_server.port)
    try:
        sid = c.request("/trailers", headers=[("te", "trailers")])
        c.pump(c.done(sid))
        st = c.streams[sid]
        assert st.headers[":status"] == "200"
        assert st.trailers == {"x-checksum": str(sum(st.data))}
        # the trailers end the stream: they came after all the data
        kinds = [type(e).__name__ for e in c.events if getattr(e, "stream_id", None) == sid]
        assert kinds.index("TrailersReceived") > max(i for i, k in enumerate(kinds) if k == "DataReceived")
    finally:
        c.close()


def test_early_hints_before_response(echo_server):
    c = H2Client(echo_server.port)
    try:
        sid = c.request("/hints")
        c.pump(c.done(sid))
        st = c.streams[sid]
        assert [h[":status"] for h in st.informational] == ["103"]
        assert "rel=preload" in st.informational[0]["link"]
        assert st.headers[":status"] == "200" and bytes(st.data) == b"hinted\n"
        kinds = [type(e).__name__ for e in c.events if getattr(e, "stream_id", None) == sid]
        assert kinds.index("InformationalResponseReceived") < kinds.index("ResponseReceived")
    finally:
        c.close()


def test_server_push(echo_server):
    c = H2Client(echo_server.port)
    try:
        sid = c.request("/push")
        c.pump(lambda: c.done(sid)() and c.pushes and c.done(*c.pushes)())
        assert bytes(c.streams[sid].data) == b"pushed /pushed.txt\n"
        (pushed_id, req), = c.pushes.items()
        assert pushed_id % 2 == 0
        assert req[":path"] == "/pushed.txt" and req[":method"] == "GET"
        assert c.streams[pushed_id].headers[":status"] == "200"
        assert bytes(c.streams[pushed_id].data) == b"pushed content\n"
    finally:
        c.close()


def test_no_push_when_client_disables_it(echo_server):
    c = H2Client(echo_server.port, settings={SettingCodes.ENABLE_PUSH: 0})
    try:
        sid = c.request("/push")
        c.pump(c.done(sid))
        assert bytes(c.streams[sid].data) == b"push not possible here\n"
        assert not c.pushes
    finally:
        c.close()


def test_head_and_not_modified_over_h2(site, tmp_path):
    """On a private server: the crash must not take the shared one down."""
    from server_fixtures import start_server
    srv = start_server(str(tmp_path), root=site[0], tls=False)
    try:
        c = H2Client(srv.port)
        head_small, head_big = c.request("/small.txt", "HEAD"), c.request("/big.bin", "HEAD")
        c.pump(c.done(head_small, head_big), timeout=5)
        etag = c.streams[head_small].headers["etag"]
        assert c.streams[head_small].headers["content-length"] == "5"
        assert c.streams[head_big].headers["content-length"] == str(len(site[1]["big.bin"]))
        cond = c.request("/small.txt", headers=[("if-none-match", etag)])
        c.pump(c.done(cond), timeout=5)
        assert c.streams[cond].headers[":status"] == "304"
        for sid in (head_small, head_big, cond):
            assert c.streams[sid].ended and not c.streams[sid].data
        c.close()
    finally:
        assert srv.stop() == 0, srv.stderr()


def test_echo_empty_body_over_h2(site, tmp_path):
    from server_fixtures import ECHO_BIN, start_server
    srv = start_server(str(tmp_path), tls=False, binary=ECHO_BIN)
    try:
        c = H2Client(srv.port)
        sid = c.request("/echo", method="POST")  # END_STREAM on the HEADERS: no body at all
        c.pump(c.done(sid), timeout=5)
        assert c.streams[sid].headers[":status"] == "200" and not c.streams[sid].data
        c.close()
    finally:
        assert srv.stop() == 0, srv.stderr()


# ---- Node ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True])
def test_node_http2_client(static_server, site, tls):
    base = f"{'https' if tls else 'http'}://127.0.0.1:{static_server.tls_port if tls else static_server.port}"
    r = node("node_h2_get.js", base, "/small.txt", "/big.bin", "/nope")
    assert r.returncode == 0, r.stderr
    got = {j["path"]: j for j in map(json.loads, r.stdout.decode().splitlines())}
    assert got["/small.txt"]["status"] == 200 and got["/small.txt"]["sha256"] == sha256(SMALL)
    assert got["/big.bin"]["status"] == 200
    assert got["/big.bin"]["length"] == len(site[1]["big.bin"])
    assert got["/big.bin"]["sha256"] == sha256(site[1]["big.bin"])
    assert got["/nope"]["status"] == 404
    if tls:
        assert got["/small.txt"]["alpn"] == "h2"
