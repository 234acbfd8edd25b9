"""Small defects from a hardening report, against the running server: the directory redirect stays
on this server, a fragment or a raw space in the target is refused over both versions, ALPN
without a common protocol is a fatal alert, the demo page shows a readable connection, and
cleartext bytes that are neither HTTP/2 nor HTTP/1.x get GOAWAY (every split of the input)."""
import re
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import RILL_BIN, free_port, wait_for_port
from server_fixtures import (GOAWAY, PREFACE, RST_STREAM, SETTINGS, SMALL, RawH2, field,
                             h1_connect, read_h1_response, recv_all)

PROTOCOL_ERROR = 1


def h1_exchange(port, target):
    """One HTTP/1.1 request with this raw target: (status, headers)."""
    sock, f = h1_connect(port)
    with sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status, headers, _, _ = read_h1_response(f)
        return status, headers


def h2_exchange(port, path, tls=False):
    """One HTTP/2 request: ("headers", [(name, value)]) or ("rst", error code)."""
    c = RawH2(port, tls=tls)
    try:
        c.request(1, path)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            fr = c.read_frame()
            assert fr is not None, "connection closed"
            ftype, _, stream, payload = fr
            if stream == 1 and ftype == 1:
                return "headers", payload
            if stream == 1 and ftype == RST_STREAM:
                return "rst", struct.unpack(">I", payload)[0]
            assert ftype != GOAWAY, f"GOAWAY {payload!r}"
        raise AssertionError("no answer on stream 1")
    finally:
        c.close()


# ---- 1. the directory redirect never names another host ---------------------------------------

REDIRECTS = [
    (b"//evil.example/..", "/"),
    (b"//evil.example/..?q=1", "/?q=1"),
    (b"//sub", "/sub/"),
    (b"///sub", "/sub/"),
    (b"/%2F%2Fevil.example/..", "/"),
    (b"//sub/./x/..", "/sub/"),
    (b"/sub?x=1", "/sub/?x=1"),
]


@pytest.mark.parametrize("target,location", REDIRECTS)
def test_directory_redirect_is_a_path_on_this_server_h1(static_server, target, location):
    status, headers = h1_exchange(static_server.port, target)
    assert status == 301
    assert field(headers, b"location").decode() == location


@pytest.mark.parametrize("target,location", REDIRECTS[:3])
def test_directory_redirect_is_a_path_on_this_server_h2(static_server, target, location):
    kind, headers = h2_exchange(static_server.port, target.decode())
    assert kind == "headers"
    assert dict(headers)[":status"] == "301"
    assert dict(headers)["location"] == location


@pytest.mark.parametrize("target", [b"/\\evil.example", b"/%5Cevil.example", b"/\\\\evil.example/.."])
def test_backslash_paths_are_refused_without_a_location(static_server, target):
    status, headers = h1_exchange(static_server.port, target)
    assert status == 400
    assert field(headers, b"location") is None


def test_doubled_slashes_still_find_the_directory(static_server, site):
    sock, f = h1_connect(static_server.port)
    with sock:
        sock.sendall(b"GET //sub// HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status, _, body, _ = read_h1_response(f)
    assert status == 200
    assert body == site[1]["sub/index.html"]


# ---- 2 and 3. one target rule for HTTP/1.1 and HTTP/2 ------------------------------------------

def test_fragment_in_the_request_target_is_400(static_server):
    assert h1_exchange(static_server.port, b"/index.html")[0] == 200
    assert h1_exchange(static_server.port, b"/index.html#frag")[0] == 400
    assert h1_exchange(static_server.port, b"/small.txt?x=1#f")[0] == 400


@pytest.mark.parametrize("path", ["/a b.txt", "/small.txt#frag", "/a\tb", "/caf\u00e9"])
def test_h2_path_outside_the_target_rule_is_a_stream_protocol_error(static_server, path):
    assert h2_exchange(static_server.port, path) == ("rst", PROTOCOL_ERROR)


def test_h2_bad_path_leaves_the_connection_usable(static_server):
    c = RawH2(static_server.port)
    try:
        c.request(1, "/a b.txt")
        c.request(3, "/small.txt")
        got, status, body, deadline = {}, None, b"", time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            ftype, flags, stream, payload = c.read_frame()
            assert ftype != GOAWAY
            if ftype == RST_STREAM:
                got[stream] = ("rst", struct.unpack(">I", payload)[0])
            elif ftype == 1 and stream == 3:
                status = dict(payload)[":status"]
            elif ftype == 0 and stream == 3:
                body += payload
            if stream == 3 and flags & 1 and ftype in (0, 1):
                got[3] = (status, body)
        assert got[1] == ("rst", PROTOCOL_ERROR)
        assert got[3] == ("200", SMALL)
    finally:
        c.close()


def test_space_in_the_target_is_refused_by_both_versions(static_server):
    # HTTP/1.1 cannot even carry it as one target; HTTP/2 must not let it through either
    sock, f = h1_connect(static_server.port)
    with sock:
        sock.sendall(b"GET /a b.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_h1_response(f)[0] == 400
    assert h2_exchange(static_server.port, "/a b.txt") == ("rst", PROTOCOL_ERROR)
    assert h2_exchange(static_server.tls_port, "/a b.txt", tls=True) == ("rst", PROTOCOL_ERROR)


# ---- 4. ALPN ------------------------------------------------------------------------------------

def tls_connect(port, alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return ctx.wrap_socket(sock, server_hostname="localhost")
    except BaseException:
        sock.close()
        raise


@pytest.mark.parametrize("offer", [["foo"], ["http/1.0"], ["spdy/3.1", "foo"]])
def test_alpn_without_a_common_protocol_is_a_fatal_alert(static_server, offer):
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol"):
        tls_connect(static_server.tls_port, offer).close()


@pytest.mark.parametrize("offer,selected", [(["h2"], "h2"), (["foo", "h2"], "h2"),
                                            (["http/1.1"], "http/1.1"), (None, None)])
def test_alpn_with_a_common_protocol_or_none_still_works(static_server, offer, selected):
    s = tls_connect(static_server.tls_port, offer)
    with s:
        assert s.selected_alpn_protocol() == selected
        if selected == "h2":
            return
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status, _, body, _ = read_h1_response(s.makefile("rb"))
        assert (status, body) == (200, SMALL)


# ---- 5. the demo page's connection -------------------------------------------------------------

def test_demo_page_shows_a_readable_connection(demo_server):
    ids = set()
    for _ in range(3):  # separate connections: the counter moves, the text stays small
        sock, f = h1_connect(demo_server.port)
        with sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            status, _, body, _ = read_h1_response(f)
        assert status == 200
        m = re.search(rb'id="connection-id">([^<]*)<', body)
        assert m, body[:400]
        text = m.group(1).decode()
        shown = re.fullmatch(r"worker (\d+), connection (\d+)", text)
        assert shown, text
        assert int(shown.group(1)) < 2  # the fixture runs two workers
        assert 1 <= int(shown.group(2)) < 1000
        assert not re.search(r"\d{7,}", text)
        ids.add(text)
    assert len(ids) == 3


# ---- 6. cleartext bytes that are neither HTTP/2 nor HTTP/1.x -----------------------------------

def write_in_pieces(sock, data, cuts):
    """Writes data cut at the given offsets; a pause between writes keeps them separate reads.
    Stops early if the server has already closed (it may decide before the last byte)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = 0
    for cut in list(cuts) + [len(data)]:
        if cut > start:
            try:
                sock.sendall(data[start:cut])
            except (BrokenPipeError, ConnectionResetError):
                return
            time.sleep(0.003)
            start = cut


def send_in_pieces(port, data, cuts):
    """(everything the server sent until it closed, closed) for data written in pieces."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        write_in_pieces(sock, data, cuts)
        return recv_all(sock, timeout=5)


def frames(data):
    out = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        out.append((data[3], data[4], int.from_bytes(data[5:9], "big"), data[9:9 + length]))
        data = data[9 + length:]
    assert data == b"", f"trailing bytes {data!r}"
    return out


def assert_goaway_protocol_error(reply, closed):
    assert closed, "the server must close the connection"
    got = frames(reply)
    assert len(got) == 1, got
    ftype, flags, stream, payload = got[0]
    assert (ftype, flags, stream) == (GOAWAY, 0, 0)
    last_stream, code = struct.unpack(">II", payload[:8])
    assert (last_stream, code) == (0, PROTOCOL_ERROR)


NOT_HTTP = [
    b"INVALID CONNECTION PREFACE\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\x00" + b"\x00" * 8,
    b"PRI * HTTP/2.0\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # a TLS ClientHello on the cleartext port
    b"GET /\r\n\r\n",  # HTTP/0.9
]


@pytest.mark.parametrize("data", NOT_HTTP, ids=lambda d: repr(d[:14]))
def test_not_http_gets_goaway_whole_and_byte_by_byte(static_server, data):
    assert_goaway_protocol_error(*send_in_pieces(static_server.port, data, []))
    assert_goaway_protocol_error(*send_in_pieces(static_server.port, data, range(1, len(data))))


def test_not_http_gets_goaway_at_every_cut(static_server):
    for data in NOT_HTTP[:3]:
        for cut in range(1, len(data)):
            assert_goaway_protocol_error(*send_in_pieces(static_server.port, data, [cut]))


REQUEST = b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def h1_reply(reply):
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_http1_request_works_at_every_split(static_server):
    assert h1_reply(send_in_pieces(static_server.port, REQUEST, range(1, len(REQUEST)))[0]) == \
        (200, SMALL)
    for cut in range(1, len(REQUEST)):
        reply, closed = send_in_pieces(static_server.port, REQUEST, [cut])
        assert closed and h1_reply(reply) == (200, SMALL), cut


@pytest.mark.parametrize("request_line", [b"INVALID / HTTP/1.1", b"GET /a b HTTP/1.1",
                                          b"PRI * HTTP/1.1", b"GET / HTTP/1.1 x HTTP/1.1"])
def test_bad_http1_requests_keep_their_400(static_server, request_line):
    data = b"\r\n" + request_line + b"\r\nConnection: close\r\n\r\n"
    for cuts in ([], range(1, len(data))):
        reply, closed = send_in_pieces(static_server.port, data, cuts)
        assert closed and reply.startswith(b"HTTP/1.1 400 "), reply[:80]


def test_long_http1_request_line_is_not_held_forever(static_server):
    # the first line never ends within the request-line limit: HTTP/1.1 answers it (414)
    data = b"GET /" + b"a" * 9000
    reply, _ = send_in_pieces(static_server.port, data, range(1000, len(data), 1000))
    assert reply.startswith(b"HTTP/1.1 414 "), reply[:80]


def test_h2_preface_works_at_every_split(static_server):
    data = PREFACE + RawH2.frame(SETTINGS, 0, 0)
    for cuts in [range(1, len(data))] + [[c] for c in range(1, len(PREFACE) + 1)]:
        with socket.create_connection(("127.0.0.1", static_server.port), timeout=10) as sock:
            write_in_pieces(sock, data, cuts)
            reply = b""
            while len(reply) < 9 or len(reply) < 9 + int.from_bytes(reply[:3], "big"):
                chunk = sock.recv(4096)
                assert chunk, (list(cuts), reply)
                reply += chunk
        assert reply[3] == SETTINGS, (list(cuts), reply[:40])


def test_dribbled_first_line_still_meets_the_head_timeout():
    # held while undecided, but not past --header-timeout: then HTTP/1.1 owns it and answers 408
    port = free_port()
    proc = subprocess.Popen([RILL_BIN, "serve", "--listen", f"127.0.0.1:{port}", "--tls-listen",
                             "none", "--header-timeout", "400"], stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /")
            start, answer = time.monotonic(), b""
            sock.settimeout(0.1)
            while not answer and time.monotonic() - start < 5:
                try:
                    sock.sendall(b"a")
                    answer = sock.recv(4096)
                except socket.timeout:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
            assert time.monotonic() - start < 3
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
