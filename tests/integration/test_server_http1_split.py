"""HTTP/1.1 input in pieces: every request shape the server reads (heads, pipelining, bodies by
length and chunked, the WebSocket and h2c Upgrade handshakes) is cut at every byte, or at random
points, and each piece is sent in its own write. Whatever the cuts, the server must answer exactly
as it does when the bytes arrive at once.

Three schedules:
- every cut point, two pieces, with a pause longer than the server's idle trim (200 ms) between
  them, all cut points at once on parallel connections (a head that spans two reads was once lost
  when the connection trimmed its parser);
- every byte in its own write (TCP_NODELAY, a short pause between writes);
- random cut points into 3-12 pieces with random short pauses, several seeds.
"""
import base64
import random
import socket
import time

import pytest

from server_fixtures import SMALL, PREFACE, start_server

TRIM_PAUSE = 0.3  # longer than the server's idle trim (TRIM_DELAY_MS, 200 ms)


# ---- what the server answers, reduced to what must not depend on the cuts ---------------------

def read_exact(sock, n, deadline):
    data = b""
    while len(data) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


class Reader:
    """Buffered reads from a socket with one overall deadline."""

    def __init__(self, sock, timeout=10):
        self.sock, self.buf, self.deadline = sock, b"", time.monotonic() + timeout

    def _fill(self):
        self.sock.settimeout(max(0.01, self.deadline - time.monotonic()))
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        try:
            while True:
                self._fill()
        except (EOFError, OSError):
            pass
        out, self.buf = self.buf, b""
        return out


def h1_response(r):
    """(status, lowercased fields without date, body) of one HTTP/1.1 response."""
    status = int(r.line().split(b" ")[1])
    fields = []
    while True:
        line = r.line()
        if not line:
            break
        name, _, value = line.partition(b":")
        fields.append((name.strip().lower(), value.strip()))
    fmap = dict(fields)
    if status == 101 or 100 <= status < 200 or status in (204, 304):
        body = b""
    elif fmap.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            size = int(r.line().split(b";")[0], 16)
            if size == 0:
                while r.line():
                    pass
                break
            body += r.exact(size)
            assert r.exact(2) == b"\r\n"
    elif b"content-length" in fmap:
        body = r.exact(int(fmap[b"content-length"]))
    else:
        body = r.rest()
    return status, sorted(f for f in fields if f[0] not in (b"date", b"etag", b"last-modified")), body


def h1_responses(count):
    def read(sock):
        r = Reader(sock)
        return [h1_response(r) for _ in range(count)]
    return read


def websocket_echo(sock):
    """The 101, then the echoed text frame (server frames are unmasked)."""
    r = Reader(sock)
    head = h1_response(r)
    b0, b1 = r.exact(2)
    return head, b0, r.exact(b1 & 0x7F)


def h2c_upgrade(sock):
    """The 101, then stream 1's response from the HTTP/2 side: its DATA bytes and END_STREAM."""
    r = Reader(sock)
    head = h1_response(r)
    body, ended = b"", False
    while not ended:
        length, ftype, flags, stream = frame_header(r)
        payload = r.exact(length)
        if ftype == 4 and not flags & 1:  # the server's SETTINGS: acknowledge it
            sock.sendall(b"\0\0\0\x04\x01\0\0\0\0")
        if stream == 1 and ftype == 0:
            body += payload
        if stream == 1 and ftype in (0, 1) and flags & 1:
            ended = True
        assert ftype != 7, f"GOAWAY {payload!r}"
    return head, body


def frame_header(r):
    raw = r.exact(9)
    length = int.from_bytes(raw[:3], "big")
    return length, raw[3], raw[4], int.from_bytes(raw[5:9], "big") & 0x7FFFFFFF


# ---- the request shapes -----------------------------------------------------------------------

def mask(payload, key=b"\x01\x02\x03\x04"):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


WS_KEY = base64.b64encode(b"0123456789abcdef")
WS_FRAME = b"\x81\x85\x01\x02\x03\x04" + mask(b"hello")

CASES = {
    # name: (server, bytes, reader)
    "get": ("static", b"GET /small.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            h1_responses(1)),
    "get-empty-lines-first": ("static", b"\r\n\r\nGET /small.txt HTTP/1.1\r\nHost: a\r\n"
                              b"Connection: close\r\n\r\n", h1_responses(1)),
    "pipelined": ("static", b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"HEAD /small.txt HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /small.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                  h1_responses(3)),
    "length-body": ("echo", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n"
                    b"Connection: close\r\n\r\nhello world", h1_responses(1)),
    "chunked-body-trailers": ("echo", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n"
                              b"6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                              b"GET /small.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                              h1_responses(2)),
    "bad-request-after-good": ("static", b"GET /small.txt HTTP/1.1\r\nHost: a\r\n\r\n"
                               b"GET /small.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                               h1_responses(2)),
    "websocket-upgrade": ("demo", b"GET /ws/echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Key: " + WS_KEY + b"\r\n"
                          b"Sec-WebSocket-Version: 13\r\n\r\n" + WS_FRAME, websocket_echo),
    "h2c-upgrade": ("static", b"GET /small.txt HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, "
                    b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
                    + PREFACE + b"\0\0\0\x04\0\0\0\0\0", h2c_upgrade),
}


@pytest.fixture(scope="module")
def servers(site, tmp_path_factory):
    from server_fixtures import ECHO_BIN
    started = {
        "static": start_server(str(tmp_path_factory.mktemp("split-static")), root=site[0],
                               tls=False),
        "echo": start_server(str(tmp_path_factory.mktemp("split-echo")), root=site[0], tls=False,
                             binary=ECHO_BIN),
        "demo": start_server(str(tmp_path_factory.mktemp("split-demo")), tls=False),
    }
    yield {name: srv.port for name, srv in started.items()}
    for srv in started.values():
        srv.stop()


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def whole(port, data, reader):
    with connect(port) as s:
        s.sendall(data)
        return reader(s)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_cut_with_a_pause_longer_than_the_trim(servers, name):
    kind, data, reader = CASES[name]
    port = servers[kind]
    expected = whole(port, data, reader)
    socks = []
    try:
        for cut in range(1, len(data)):
            s = connect(port)
            s.sendall(data[:cut])
            socks.append((cut, s))
        time.sleep(TRIM_PAUSE)
        for cut, s in socks:
            s.sendall(data[cut:])
        for cut, s in socks:
            got = reader(s)
            assert got == expected, f"cut at byte {cut}: {data[:cut]!r} | {data[cut:]!r}"
    finally:
        for _, s in socks:
            s.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_byte_in_its_own_write(servers, name):
    kind, data, reader = CASES[name]
    port = servers[kind]
    expected = whole(port, data, reader)
    with connect(port) as s:
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
            time.sleep(0.002)
        assert reader(s) == expected


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", sorted(CASES))
def test_random_cuts(servers, name, seed):
    kind, data, reader = CASES[name]
    port = servers[kind]
    expected = whole(port, data, reader)
    rng = random.Random(seed * 7919 + len(data))
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(2, 11))))
    pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    with connect(port) as s:
        for piece in pieces:
            s.sendall(piece)
            time.sleep(rng.choice((0, 0.001, 0.005, 0.02)))
        assert reader(s) == expected, f"pieces {pieces!r}"


def test_slow_head_still_times_out_when_it_began_in_a_pipelined_read(site, tmp_path):
    """A request head that begins behind a complete request in the same read is held to the head
    deadline too (408), not only one that begins a read."""
    srv = start_server(str(tmp_path), root=site[0], tls=False, extra=("--header-timeout", "500"))
    try:
        with connect(srv.port) as s:
            s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /small.txt HTTP/1.1\r\n")
            r = Reader(s, timeout=5)
            first = h1_response(r)
            assert first[0] == 200 and first[2] == SMALL
            start = time.monotonic()
            second = h1_response(r)
            assert second[0] == 408
            assert time.monotonic() - start < 3
    finally:
        srv.stop()


def test_refused_requests_are_in_the_access_log(site, tmp_path):
    log = str(tmp_path / "access.log")
    srv = start_server(str(tmp_path), root=site[0], tls=False, access_log=log,
                       extra=("--header-timeout", "400"))
    try:
        for request, status in ((b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
                                (b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
                                (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
                                (b"GET /y HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 70000 + b"\r\n\r\n",
                                 431),
                                (b"GET /slow HTTP/1.1\r\nHost: a\r\n", 408)):
            with connect(srv.port) as s:
                s.sendall(request)
                assert h1_response(Reader(s))[0] == status
    finally:
        srv.stop()
    with open(log, "rb") as f:
        lines = f.read().splitlines()
    assert len(lines) == 5, lines
    # one line each; workers buffer their lines, so the file's order is not the requests' order
    for want in (b'"GET /a\\x09b HTTP/1.1" 400 0', b'"GET /x HTTP/1.1" 400 0', b'" 414 0',
                 b'"GET /y HTTP/1.1" 431 0', b'"GET /slow HTTP/1.1" 408 0'):
        assert sum(want in line for line in lines) == 1, (want, lines)


def test_head_limit_is_max_header_list_size(site, tmp_path):
    """One figure for both protocols: a 20 KB HTTP/1.1 head fits the default 64 KiB; with
    --max-header-list-size 8192 it gets 431."""
    request = b"GET /small.txt HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 20000 + \
        b"\r\nConnection: close\r\n\r\n"
    for extra, status in (((), 200), (("--max-header-list-size", "8192"), 431)):
        srv = start_server(str(tmp_path / str(status)), root=site[0], tls=False, extra=extra)
        try:
            assert whole(srv.port, request, h1_responses(1))[0][0] == status
        finally:
            srv.stop()


@pytest.mark.parametrize("start", [b"G", b"GET /", b"GET /small.txt HTTP/1."])
def test_first_line_that_stops_coming_gets_408(site, tmp_path, start):
    """Bytes that cannot yet tell HTTP/1.1 from HTTP/2 are held, but not past the head timeout."""
    srv = start_server(str(tmp_path), root=site[0], tls=False, extra=("--header-timeout", "400"))
    try:
        with connect(srv.port) as s:
            s.sendall(start)
            began = time.monotonic()
            assert h1_response(Reader(s, timeout=5))[0] == 408
            assert time.monotonic() - began < 3
    finally:
        srv.stop()
