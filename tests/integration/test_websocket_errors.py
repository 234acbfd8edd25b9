"""WebSocket failures end the same way over both transports (RFC 6455 §7.1.7, RFC 8441 §5).

When a client breaks the protocol (a reserved bit, an unmasked frame, a fragmented control frame),
sends invalid UTF-8 in a text message, an oversized message or a permessage-deflate bomb, the
server sends a Close frame with the matching code (1002, 1007, 1009) and then closes the
transport: over HTTP/1.1 the TCP connection, over HTTP/2 the CONNECT stream, with END_STREAM
(the orderly close), never with a bare RST_STREAM that would drop the Close frame. RST_STREAM
(CANCEL) comes only when the peer never ends its side of the stream in time.

Also: the opening handshake's checks (Sec-WebSocket-Version, Origin) answer the same over
extended CONNECT as over the HTTP/1.1 Upgrade.

The clients here are raw: the HTTP/2 one is server_fixtures.RawH2 (frames by hand, so the
WebSocket bytes can be cut across DATA frames anywhere), the HTTP/1.1 one a plain socket."""
import base64
import os
import random
import socket
import struct
import time
import zlib

import pytest

from server_fixtures import (DATA, END_STREAM, GOAWAY, HEADERS, PING, RST_STREAM,
                             SETTINGS, WINDOW_UPDATE, RawH2, start_server)

CANCEL = 0x8
ENABLE_CONNECT_PROTOCOL = 0x8
MAX_MESSAGE = 16 * 1024 * 1024  # the demo echo's limit (RILL_WS_DEFAULT_MAX_MESSAGE)
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING = 0x0, 0x1, 0x2, 0x8, 0x9
FIN, RSV1, RSV2 = 0x80, 0x40, 0x20
# The server resets a stream whose peer has not ended it this long after the server's END_STREAM.
CLOSE_LINGER_S = 5.0
MAX_DATA_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE's initial value


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """`rill serve` with the demo site (/ws/echo), cleartext only."""
    s = start_server(str(tmp_path_factory.mktemp("ws-errors")), tls=False)
    yield s
    assert s.stop() == 0, s.stderr()


# ---- WebSocket frames --------------------------------------------------------------------------

def ws_frame(opcode, payload=b"", flags=FIN, masked=True, length=None):
    """A client frame: masked unless told otherwise; `length` overrides the declared length."""
    n = len(payload) if length is None else length
    mask_bit = 0x80 if masked else 0
    head = bytes([flags | opcode])
    if n < 126:
        head += bytes([mask_bit | n])
    elif n <= 0xFFFF:
        head += bytes([mask_bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def parse_server_frames(data):
    """[(opcode, flags, payload)] of unmasked server frames; the bytes must hold whole frames."""
    frames, pos = [], 0
    while pos < len(data):
        assert len(data) - pos >= 2, f"a cut frame header at the end: {data[pos:]!r}"
        b0, b1 = data[pos], data[pos + 1]
        assert not b1 & 0x80, "the server masked a frame"
        n, pos = b1 & 0x7F, pos + 2
        if n == 126:
            n, pos = struct.unpack(">H", data[pos:pos + 2])[0], pos + 2
        elif n == 127:
            n, pos = struct.unpack(">Q", data[pos:pos + 8])[0], pos + 8
        assert len(data) - pos >= n, "a cut frame payload at the end"
        frames.append((b0 & 0x0F, b0 & 0xF0, data[pos:pos + n]))
        pos += n
    return frames


def close_code(frames):
    """The code of the last frame, which must be a Close with a code."""
    assert frames, "no frame at all before the end"
    opcode, _, payload = frames[-1]
    assert opcode == OP_CLOSE, f"the last frame is not a Close: {frames[-1]!r}"
    assert len(payload) >= 2
    return struct.unpack(">H", payload[:2])[0]


def deflate_bomb(size):
    """One permessage-deflate message payload inflating to `size` zero bytes (RFC 7692 §7.2.1:
    raw DEFLATE, sync-flushed, the trailing 00 00 ff ff removed)."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    out = b"".join(z.compress(chunk) for _ in range(size // len(chunk)))
    out += z.compress(bytes(size % len(chunk))) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# Each case: what the client sends after a good echo, and the close code it must get back.
CASES = {
    "rsv2-bit": (lambda: ws_frame(OP_TEXT, b"hi", flags=FIN | RSV2), 1002),
    "unmasked-frame": (lambda: ws_frame(OP_TEXT, b"hi", masked=False), 1002),
    "fragmented-ping": (lambda: ws_frame(OP_PING, b"p", flags=0), 1002),
    "invalid-utf8": (lambda: ws_frame(OP_TEXT, b"ok \xff\xfe"), 1007),
    # the invalid sequence is split across the fragments of one message
    "invalid-utf8-fragmented": (lambda: (ws_frame(OP_TEXT, b"ab\xe2\x82", flags=0) +
                                         ws_frame(OP_CONT, b"\x28")), 1007),
    # declared bigger than the limit: refused at the header, before any payload
    "oversized": (lambda: ws_frame(OP_BINARY, length=MAX_MESSAGE + 1), 1009),
    "deflate-bomb": (lambda: ws_frame(OP_BINARY, deflate_bomb(MAX_MESSAGE + (1 << 20)),
                                      flags=FIN | RSV1), 1009),
}


def pieces(data, whole):
    """The client's bytes as delivered: whole, or cut at every byte of the first 16 bytes (so every
    frame header is split) and at random points after."""
    if whole:
        return [data]
    rng = random.Random(len(data))
    cuts = list(range(1, min(16, len(data))))
    pos = 16
    while pos < len(data):
        cuts.append(pos)
        pos += rng.randint(1, max(1, len(data) // 20))
    bounds = [0] + cuts + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


# ---- HTTP/2: extended CONNECT --------------------------------------------------------------------

class H2WebSocket:
    """One WebSocket on stream 1 of a fresh h2c connection (prior knowledge)."""

    def __init__(self, port, headers=None, path="/ws/echo"):
        self.h2 = RawH2(port)
        while True:  # the server's first SETTINGS must allow extended CONNECT (RFC 8441 §3)
            ftype, flags, _, payload = self.next_frame()
            if ftype == SETTINGS and not flags & 1:
                settings = dict(struct.unpack(">HI", payload[i:i + 6])
                                for i in range(0, len(payload), 6))
                assert settings.get(ENABLE_CONNECT_PROTOCOL) == 1
                break
        if headers is None:
            headers = [("sec-websocket-version", "13")]
        self.h2.request(1, path, method="CONNECT", headers=[(":protocol", "websocket"), *headers],
                        end=False)
        self.data = b""
        self.ended = False  # the server's END_STREAM arrived
        self.reset = None   # the server's RST_STREAM error code
        self.status, self.response = self.read_response()

    def next_frame(self, timeout=10):
        frame = self.h2.read_frame(timeout)
        assert frame is not None, "the server closed the connection"
        return frame

    def read_response(self):
        while True:
            ftype, flags, stream, payload = self.next_frame()
            if stream != 1:
                continue
            assert ftype == HEADERS, f"frame type {ftype} before the response head"
            fields = dict(payload)
            if flags & END_STREAM:
                self.ended = True
            return int(fields[":status"]), fields

    def send(self, data, whole=True, end=False):
        parts = [p[i:i + MAX_DATA_FRAME] for p in (pieces(data, whole) if data else [])
                 for i in range(0, len(p), MAX_DATA_FRAME)]
        for i, part in enumerate(parts):
            last = end and i == len(parts) - 1
            self.h2.send(DATA, END_STREAM if last else 0, 1, part)
        if end and not parts:
            self.h2.send(DATA, END_STREAM, 1)

    def read_until(self, done, timeout=10):
        """Reads stream 1 until done(self) or the stream ends or is reset."""
        deadline = time.monotonic() + timeout
        while not done(self) and not self.ended and self.reset is None:
            left = deadline - time.monotonic()
            assert left > 0, "timed out waiting on stream 1"
            ftype, flags, stream, payload = self.next_frame(left)
            if ftype == GOAWAY:
                raise AssertionError(f"GOAWAY {payload!r}")
            if stream != 1:
                continue
            if ftype == DATA:
                self.data += payload
                if payload:
                    self.h2.window_update(0, len(payload))
                if flags & END_STREAM:
                    self.ended = True
            elif ftype == RST_STREAM:
                self.reset = struct.unpack(">I", payload)[0]

    def echo(self, text):
        self.data = b""
        self.send(ws_frame(OP_TEXT, text.encode()))
        self.read_until(lambda s: len(s.data) >= 2 + len(text))
        assert parse_server_frames(self.data) == [(OP_TEXT, FIN, text.encode())]
        self.data = b""

    def ping_roundtrip(self, timeout=5):
        """A PING's ACK: everything the server sent before it has been read."""
        self.h2.send(PING, 0, 0, b"rill-ws!")
        deadline = time.monotonic() + timeout
        while True:
            ftype, flags, stream, payload = self.next_frame(deadline - time.monotonic())
            if ftype == PING and flags & 1:
                return
            if stream == 1 and ftype == RST_STREAM:
                self.reset = struct.unpack(">I", payload)[0]
            if stream == 1 and ftype == DATA:
                self.data += payload

    def close(self):
        self.h2.close()


@pytest.mark.parametrize("delivery", ["whole", "pieces"])
@pytest.mark.parametrize("case", list(CASES))
def test_h2_failure_sends_close_then_end_stream(srv, case, delivery):
    make, code = CASES[case]
    extensions = [("sec-websocket-extensions", "permessage-deflate")] * (case == "deflate-bomb")
    ws = H2WebSocket(srv.port, [("sec-websocket-version", "13"), *extensions])
    try:
        assert ws.status == 200 and not ws.ended
        if extensions:
            assert ws.response["sec-websocket-extensions"].startswith("permessage-deflate")
        ws.echo("before the error")
        ws.send(make(), whole=delivery == "whole")
        ws.read_until(lambda s: False)
        assert ws.reset is None, f"RST_STREAM {ws.reset} instead of Close + END_STREAM"
        assert ws.ended
        assert close_code(parse_server_frames(ws.data)) == code
        # The client answers as a browser would: its Close, then its END_STREAM. The server reads
        # none of it (RFC 6455 §7.1.7) and the stream closes without a reset.
        ws.send(ws_frame(OP_CLOSE, struct.pack(">H", code)), end=True)
        ws.ping_roundtrip()
        assert ws.reset is None
        # the connection still serves other WebSockets
        other = H2WebSocket(srv.port)
        try:
            other.echo("after")
        finally:
            other.close()
    finally:
        ws.close()


def test_h2_peer_that_never_ends_its_side_gets_rst_cancel(srv):
    ws = H2WebSocket(srv.port)
    try:
        ws.send(ws_frame(OP_TEXT, b"\xc0\xaf"))  # an overlong encoding: 1007
        started = time.monotonic()
        ws.read_until(lambda s: False)
        assert ws.ended and ws.reset is None
        assert close_code(parse_server_frames(ws.data)) == 1007
        # The client keeps its side open and sends more: ignored, and the stream is reset once
        # the server stops waiting.
        ws.send(ws_frame(OP_TEXT, b"still here"))
        deadline = time.monotonic() + CLOSE_LINGER_S + 5
        while ws.reset is None:
            assert time.monotonic() < deadline, "no RST_STREAM after the linger time"
            ftype, _, stream, payload = ws.next_frame(deadline - time.monotonic())
            if stream == 1:
                assert ftype in (RST_STREAM, WINDOW_UPDATE), f"frame type {ftype} after the end"
                if ftype == RST_STREAM:
                    ws.reset = struct.unpack(">I", payload)[0]
        assert ws.reset == CANCEL
        assert time.monotonic() - started >= CLOSE_LINGER_S - 0.5
    finally:
        ws.close()


def test_h2_clean_close_handshake_ends_the_stream(srv):
    """The orderly path for comparison: the client's Close is echoed, then END_STREAM."""
    ws = H2WebSocket(srv.port)
    try:
        ws.echo("hi")
        ws.send(ws_frame(OP_CLOSE, struct.pack(">H", 4001) + b"bye"), whole=False)
        ws.read_until(lambda s: False)
        assert ws.reset is None and ws.ended
        assert close_code(parse_server_frames(ws.data)) == 4001
        ws.send(b"", end=True)
        ws.ping_roundtrip()
        assert ws.reset is None
    finally:
        ws.close()


def test_h2_peer_ending_first_gets_end_stream_back(srv):
    """The peer's END_STREAM without a Close is a TCP FIN without a Close: the server ends its
    side at once, and the stream closes without a reset."""
    ws = H2WebSocket(srv.port)
    try:
        ws.echo("hi")
        ws.send(b"", end=True)
        ws.read_until(lambda s: False)
        assert ws.ended and ws.reset is None and ws.data == b""
        ws.ping_roundtrip()
        assert ws.reset is None
    finally:
        ws.close()


# ---- HTTP/1.1 Upgrade, for comparison ------------------------------------------------------------

def h1_upgrade(port, headers=None, path="/ws/echo"):
    """(socket, status, response head as text, bytes after the head)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if headers is None:
        headers = [("Sec-WebSocket-Version", "13")]
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}"]
    lines += [f"{k}: {v}" for k, v in headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the response head: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    head = head.decode()
    return sock, int(head.split(" ", 2)[1]), head.lower(), rest


def h1_read_to_eof(sock, data=b"", timeout=10):
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk
    return data, "timeout"


@pytest.mark.parametrize("delivery", ["whole", "pieces"])
@pytest.mark.parametrize("case", list(CASES))
def test_h1_failure_sends_close_then_closes(srv, case, delivery):
    make, code = CASES[case]
    extensions = [("Sec-WebSocket-Extensions", "permessage-deflate")] * (case == "deflate-bomb")
    sock, status, head, rest = h1_upgrade(srv.port, [("Sec-WebSocket-Version", "13"), *extensions])
    try:
        assert status == 101, head
        if extensions:
            assert "sec-websocket-extensions: permessage-deflate" in head
        sock.sendall(ws_frame(OP_TEXT, b"before the error"))
        data = rest
        while len(data) < 2 + len(b"before the error"):
            data += sock.recv(65536)
        assert parse_server_frames(data) == [(OP_TEXT, FIN, b"before the error")]
        for part in pieces(make(), delivery == "whole"):
            sock.sendall(part)
            if delivery == "pieces":
                time.sleep(0.002)  # separate reads on the server, most of the time
        data, how = h1_read_to_eof(sock)
        assert how == "eof"
        assert close_code(parse_server_frames(data)) == code
    finally:
        sock.close()


# ---- the opening handshake: one set of rules for both transports ---------------------------------

VERSION_CASES = {
    "13": (None, 200),
    "missing": ([], 400),
    "8": ([("sec-websocket-version", "8")], 426),
    "13,8": ([("sec-websocket-version", "13, 8")], 426),
    "repeated": ([("sec-websocket-version", "13"), ("sec-websocket-version", "8")], 400),
}


@pytest.mark.parametrize("case", list(VERSION_CASES))
def test_version_rule_on_both_transports(srv, case):
    headers, want = VERSION_CASES[case]
    ws = H2WebSocket(srv.port, headers)
    try:
        assert ws.status == want, ws.response
        if want == 426:
            assert ws.response.get("sec-websocket-version") == "13"
        if want == 200:
            ws.echo("versioned")
        else:
            ws.read_until(lambda s: False)  # the error body, then END_STREAM
            assert ws.ended and ws.reset is None
    finally:
        ws.close()
    sock, status, head, _ = h1_upgrade(srv.port, headers)
    try:
        assert status == (101 if want == 200 else want), head
        if want == 426:
            assert "\r\nsec-websocket-version: 13" in head
    finally:
        sock.close()


def test_origin_rule_on_both_transports(tmp_path):
    s = start_server(str(tmp_path), tls=False, extra=["--ws-origin", "https://good.example"])
    try:
        for origin, want in (("https://good.example", 200), ("https://GOOD.example", 200),
                             ("https://evil.example", 403), (None, 403)):
            extra = [("origin", origin)] if origin else []
            ws = H2WebSocket(s.port, [("sec-websocket-version", "13"), *extra])
            try:
                assert ws.status == want, (origin, ws.response)
            finally:
                ws.close()
            sock, status, head, _ = h1_upgrade(s.port, [("Sec-WebSocket-Version", "13"), *extra])
            sock.close()
            assert status == (101 if want == 200 else want), (origin, head)
    finally:
        assert s.stop() == 0, s.stderr()


def test_other_handshake_checks_over_h2(srv):
    """A plain request to the endpoint gets 426 as over HTTP/1.1; Connection and Upgrade, which
    RFC 8441 §4 forbids on the CONNECT, make the request malformed (RST_STREAM PROTOCOL_ERROR)."""
    h2 = RawH2(srv.port)
    try:
        h2.request(1, "/ws/echo")
        for stream, extra in ((3, ("upgrade", "websocket")), (5, ("connection", "upgrade"))):
            h2.request(stream, "/ws/echo", method="CONNECT", end=False,
                       headers=[(":protocol", "websocket"), ("sec-websocket-version", "13"), extra])
        answers, deadline = {}, time.monotonic() + 10
        while len(answers) < 3:
            frame = h2.read_frame(deadline - time.monotonic())
            assert frame is not None
            ftype, _, stream, payload = frame
            if ftype == HEADERS and stream == 1:
                answers[1] = dict(payload)[":status"]
            elif ftype == RST_STREAM and stream in (3, 5):
                answers[stream] = struct.unpack(">I", payload)[0]
        assert answers == {1: "426", 3: 0x1, 5: 0x1}
    finally:
        h2.close()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        sock.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 426 ")
    finally:
        sock.close()
