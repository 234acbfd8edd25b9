"""HTTP/1.1 over raw sockets: keep-alive, pipelining, chunked bodies, 100-continue, request
smuggling shapes, HTTP/1.0; and the echo example's body streaming through curl."""
import os
import random
import socket
import time

import pytest

from server_fixtures import (SMALL, curl, field, h1_connect, read_h1_response, recv_all, sha256)


def test_keep_alive_two_requests_one_connection(static_server, site):
    s, f = h1_connect(static_server.port)
    with s:
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, body, _ = read_h1_response(f)
        assert (status, body) == (200, SMALL)
        assert field(headers, b"connection") != b"close"
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, body, _ = read_h1_response(f)
        assert (status, body) == (200, site[1]["index.html"])
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status, headers, body, _ = read_h1_response(f)
        assert (status, body) == (200, SMALL)
        assert field(headers, b"connection") == b"close"
        assert f.read() == b""  # and then the server closes


def test_pipelined_requests_answered_in_order(static_server, site):
    s, f = h1_connect(static_server.port)
    with s:
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"HEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=0-99\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /small.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        r1 = read_h1_response(f)
        assert (r1[0], r1[2]) == (200, site[1]["index.html"])
        r2 = read_h1_response(f, head_request=True)  # a HEAD body would corrupt what follows
        assert r2[0] == 200 and field(r2[1], b"content-length") == str(len(site[1]["big.bin"])).encode()
        r3 = read_h1_response(f)
        assert (r3[0], r3[2]) == (206, site[1]["big.bin"][:100])
        assert read_h1_response(f)[0] == 404
        r5 = read_h1_response(f)
        assert (r5[0], r5[2]) == (200, SMALL)
        assert f.read() == b""


def test_pipelined_request_bodies(echo_server):
    s, f = h1_connect(echo_server.port)
    with s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nfirst"
                  b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"6\r\nsecond\r\n0\r\n\r\n"
                  b"GET /small.txt HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
                  b"third")
        assert [read_h1_response(f)[2] for _ in range(4)] == [b"first", b"second", SMALL, b"third"]
        assert f.read() == b""


def test_pipelined_big_responses_in_order(static_server, site):
    """Several multi-megabyte answers queued behind each other on one connection."""
    s, f = h1_connect(static_server.port, timeout=30)
    with s:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n" * 3 +
                  b"GET /small.txt HTTP/1.1\r\nHost: a\r\n\r\n")
        for _ in range(3):
            status, _, body, _ = read_h1_response(f)
            assert status == 200 and sha256(body) == sha256(site[1]["big.bin"])
        assert read_h1_response(f)[2] == SMALL


def test_chunked_request_body_echoed(echo_server):
    body = random.Random(1).randbytes(100000)
    chunks = [body[i:i + 7000] for i in range(0, len(body), 7000)]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nx-trailer: 1\r\n\r\n"
    s, f = h1_connect(echo_server.port)
    with s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-test\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + wire)
        status, headers, got, _ = read_h1_response(f)
        assert status == 200
        assert field(headers, b"content-type") == b"application/x-test"
        assert got == body
        # the connection stays usable afterwards
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
        assert read_h1_response(f)[2] == b"abc"


def test_expect_100_continue(echo_server):
    s, f = h1_connect(echo_server.port)
    with s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        assert f.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert f.readline() == b"\r\n"
        s.sendall(b"hello world")
        status, _, body, _ = read_h1_response(f)
        assert (status, body) == (200, b"hello world")


def test_expect_100_continue_not_sent_when_answered_without_body(static_server):
    """A 405 is final: no 100 Continue, the body is never asked for."""
    s, f = h1_connect(static_server.port)
    with s:
        s.sendall(b"POST /small.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        assert read_h1_response(f)[0] == 405


SMUGGLING = {
    "content-length-and-transfer-encoding":
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
    "two-different-content-lengths":
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "content-length-list": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde",
    "content-length-sign": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
    "bad-chunk-size":
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk-size-overflow":
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10000000000000000003\r\nabc\r\n0\r\n\r\n",
    "chunked-not-last":
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "unknown-transfer-coding": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "space-before-colon":
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": b"GET /small.txt HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "bare-lf": b"GET /small.txt HTTP/1.1\nHost: x\n\n",
    "bare-cr": b"GET /small.txt HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "no-host": b"GET /small.txt HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET /small.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "http10-chunked": b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", SMUGGLING)
def test_smuggling_shapes_rejected_and_closed(echo_server, name):
    s, f = h1_connect(echo_server.port)
    with s:
        # a valid request pipelined behind must never be answered
        s.sendall(SMUGGLING[name] + b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _, _ = read_h1_response(f)
        assert status == 400
        assert field(headers, b"connection") == b"close"
        assert f.read() == b""  # closed, nothing more


def test_oversized_head_431(echo_server):
    s, f = h1_connect(echo_server.port)
    with s:
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        assert read_h1_response(f)[0] == 431


def test_rejections_carry_date(echo_server):
    s, f = h1_connect(echo_server.port)
    with s:
        s.sendall(SMUGGLING["two-different-content-lengths"])
        status, headers, _, _ = read_h1_response(f)
        assert status == 400 and field(headers, b"date")


def test_http10_content_length_then_close(static_server):
    s, f = h1_connect(static_server.port)
    with s:
        s.sendall(b"GET /small.txt HTTP/1.0\r\n\r\n")
        status, headers, body, _ = read_h1_response(f)
        assert (status, body) == (200, SMALL)
        assert field(headers, b"content-length") == b"5"
        assert f.read() == b""


def test_http10_without_length_is_close_delimited(echo_server):
    """No content-length known in advance and no chunked coding for 1.0: the close ends it."""
    s, _ = h1_connect(echo_server.port)
    with s:
        s.sendall(b"GET /trailers HTTP/1.0\r\n\r\n")
        data, closed = recv_all(s)
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower() and b"content-length" not in head.lower()
    assert body == b"a body, then trailers\n"


def test_trailers_over_chunked(echo_server):
    s, f = h1_connect(echo_server.port)
    with s:
        s.sendall(b"GET /trailers HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n")
        status, headers, body, trailers = read_h1_response(f)
    assert status == 200 and field(headers, b"transfer-encoding") == b"chunked"
    assert field(trailers, b"x-checksum") == str(sum(body)).encode()


def test_early_hints_over_http1(echo_server):
    s, f = h1_connect(echo_server.port)
    with s:
        s.sendall(b"GET /hints HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, _, _ = read_h1_response(f)
        assert status == 103
        assert b"rel=preload" in field(headers, b"link")
        status, _, body, _ = read_h1_response(f)
        assert (status, body) == (200, b"hinted\n")


@pytest.mark.parametrize("flags", [["--http1.1"], ["--http2-prior-knowledge"]])
def test_echo_large_body_with_curl(echo_server, tmp_path, flags):
    """1 MB up and back down while curl sends and reads at once (back-pressure both ways)."""
    body = os.urandom(1 << 20)
    src = tmp_path / "in.bin"
    src.write_bytes(body)
    r = curl(*flags, "--data-binary", f"@{src}", "-H", "Content-Type: application/x-blob",
             "-D", str(tmp_path / "head"), echo_server.url("/echo"))
    assert r.returncode == 0, r.stderr
    assert sha256(r.stdout) == sha256(body)
    assert b"content-type: application/x-blob" in (tmp_path / "head").read_bytes().lower()


def test_slow_reader_gets_whole_big_file(static_server, site):
    """The client stops reading for a while: the server must wait, not drop or spin."""
    s, f = h1_connect(static_server.port, timeout=30)
    with s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        first = s.recv(1000)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(0.5)
        data, closed = recv_all(s, timeout=20)
    body = (first + data).partition(b"\r\n\r\n")[2]
    assert closed and sha256(body) == sha256(site[1]["big.bin"])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def test_h2c_upgrade_with_body_is_answered_over_http11(echo_server):
    # A request with a body is not upgraded (RFC 9113 §3.1 lets the server ignore Upgrade): the
    # body would have to be held whole until the switch. It is answered over HTTP/1.1 instead.
    r = curl("--http2", "-v", "--data-binary", "hello upgrade", echo_server.url("/echo"))
    assert r.returncode == 0, r.stderr
    assert b"101 Switching Protocols" not in r.stderr and b"< HTTP/1.1 200" in r.stderr
    assert r.stdout == b"hello upgrade"


def test_h2c_upgrade_body_memory_is_bounded(site, tmp_path):
    from server_fixtures import ECHO_BIN, start_server
    srv = start_server(str(tmp_path), root=site[0], tls=False, binary=ECHO_BIN)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        before = rss_kib(srv.proc.pid)
        size = 64 << 20
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                  b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
                  b"Content-Length: %d\r\n\r\n" % size)
        chunk = b"x" * (1 << 20)
        try:  # a bounded server stops reading (the send times out) or answers
            for _ in range(size // len(chunk)):
                s.sendall(chunk)
        except OSError:
            pass
        time.sleep(0.3)
        grown_mib = (rss_kib(srv.proc.pid) - before) / 1024
        assert grown_mib < 16, f"{grown_mib:.0f} MiB held for one request body"
    finally:
        s.close()
        assert srv.stop() == 0, srv.stderr()


def test_absolute_form_target(static_server):
    s, f = h1_connect(static_server.port)
    with s:
        s.sendall(b"GET http://example.com/small.txt HTTP/1.1\r\nHost: example.com\r\n\r\n")
        status, _, body, _ = read_h1_response(f)
    assert (status, body) == (200, SMALL)


def test_client_gone_mid_download_leaves_server_serving(static_server, site):
    for _ in range(3):
        s, f = h1_connect(static_server.port)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        assert f.read(12) == b"HTTP/1.1 200"
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # a reset, with most of the body unsent
    s, f = h1_connect(static_server.port)
    with s:
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_h1_response(f)[2] == SMALL


def test_h2c_upgrade_first_flight_is_small_until_the_preface(static_server, site):
    """Behind the 101 only SETTINGS and the response head go out until the client's preface
    arrives; then the body follows. (curl before 8.1 keeps only 32 KiB after a 101.)"""
    s, f = h1_connect(static_server.port)
    with s:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                  b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
        first, _ = recv_all(s, timeout=0.5)
        assert first.startswith(b"HTTP/1.1 101 ")
        frames = first.split(b"\r\n\r\n", 1)[1]
        kinds = []
        while frames:
            length = int.from_bytes(frames[:3], "big")
            kinds.append(frames[3])
            frames = frames[9 + length:]
        assert 0 not in kinds and len(first) < 4096, (kinds, len(first))
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        more, _ = recv_all(s, timeout=1)
        assert len(more) > 60000  # the first window's worth of DATA follows the preface


def test_debian_curl_h2c_upgrade_of_a_large_file(static_server, site):
    """Debian 12's curl 7.88 fails an Upgrade whose 101 is followed by more than 32 KiB."""
    r = curl("--http2", static_server.url("/big.bin"), "-o", "-", "-w", "%{http_version}")
    assert r.returncode == 0, r.stderr
    assert r.stdout[-1:] == b"2" and sha256(r.stdout[:-1]) == sha256(site[1]["big.bin"])


def test_refused_head_request_has_no_body(echo_server):
    """A HEAD the parser refuses (400, close) is answered without a body: a client would read one
    as the start of a next response (RFC 9112 §6.3)."""
    s, f = h1_connect(echo_server.port)
    with s:
        s.sendall(b"HEAD /small.txt HTTP/1.1\r\nHost: a\r\nBad Field\r\n\r\n")
        data, closed = recv_all(s, timeout=5)
    assert closed and data.startswith(b"HTTP/1.1 400 ")
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: " in head.lower() and rest == b""
