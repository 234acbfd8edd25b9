"""rill serve --proxy with WebSockets and other tunnels: an HTTP/1.1 Upgrade or an HTTP/2 extended
CONNECT (RFC 8441) from the client goes to the backend as an HTTP/1.1 Upgrade on a connection of
its own; the backend's answer decides; then bytes both ways. Peers: python3-websockets over
HTTP/1.1, python-h2 over h2c (frames made here), Node's `ws` (Debian's node-ws) as the WebSocket
backend, and a raw-socket backend that records the exact head it got and echoes bytes."""
import asyncio
import hashlib
import json
import os
import random
import signal
import queue
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
import websockets

from conftest import RILL_BIN
from server_fixtures import start_server

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1024 * 1024
NODE_PATH = "/usr/share/nodejs"  # Debian's node-ws lives here; Node does not look there itself


# ---- WebSocket frames --------------------------------------------------------------------------

def ws_frame(payload, opcode=1, mask=True, fin=True):
    """One frame; client frames are masked (RFC 6455 §5.3)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    whole = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(whole, "big")).to_bytes(n, "big") if n else b""
    return head + key + masked


class FrameReader:
    """Server frames from a byte stream, inflated when permessage-deflate is on (the server keeps
    its context, so one inflater per connection)."""

    def __init__(self, deflate=False):
        self.buf = b""
        self.inflater = zlib.decompressobj(-15) if deflate else None

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, off = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
            assert not b1 & 0x80, "server frames are not masked"
            if len(self.buf) < off + n:
                break
            payload = self.buf[off:off + n]
            self.buf = self.buf[off + n:]
            if b0 & 0x40:  # RSV1: compressed (RFC 7692 §7.2.2)
                assert self.inflater, "compressed frame without permessage-deflate"
                payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
            out.append((b0 & 0x0F, payload))
        return out


# ---- backends ----------------------------------------------------------------------------------

class NodeWs:
    """Node's `ws` (tests/integration/ws_lib_backend.js): echoes with a "ws:" prefix, answers
    "head?" with the request head it got, chooses permessage-deflate with
    server_max_window_bits=10 and the last offered sub-protocol."""

    def __init__(self):
        env = {**os.environ, "NODE_PATH": NODE_PATH}
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "ws_lib_backend.js")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(self.proc.stderr.read().decode(errors="replace"))
        self.port = int(line)

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class RawUpgradeBackend:
    """A raw HTTP/1.1 backend for tunnels: records each connection's request head; a path with
    "deny" gets 403 with a body, "silent" no answer at all, anything else "101 Switching
    Protocols" with the asked Upgrade token, then echoes bytes. After the 101, "rst!" makes it
    reset the connection (SO_LINGER 0: a dying backend) and "fin!" makes it end its side in order
    (closed is set when the proxy's end follows); a path with "flood" sends 200 MiB after the 101,
    one with "sink" never reads, one with "hold" never ends: it reads to the proxy's end, then
    (once poked) writes until a write fails (closed)."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.closed = threading.Event()  # the proxy closed a tunnel connection
        self.reset = threading.Event()  # ...with a reset (an abort passed on), not a FIN
        self.done = threading.Event()
        self.got_eof, self.poke = threading.Event(), threading.Event()  # for "hold"
        self.flooded = 0
        self.received = b""  # tunnel bytes from every connection
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(60)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                if not chunk:
                    return
                head += chunk
            head, rest = head.split(b"\r\n\r\n", 1)
            with self.lock:
                self.heads.append(head + b"\r\n\r\n")
            line = head.split(b"\r\n")[0]
            if b"deny" in line:
                c.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n"
                          b"x-backend: raw\r\ncontent-length: 7\r\n\r\ndenied\n")
                return
            if b"badaccept" in line:  # a 101 for another key, with a first frame behind it
                c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                          b"connection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                          b"\r\n\x81\x02hi")
                c.recv(1)
                return
            if b"silent" in line:
                c.recv(1)
                return
            token = [v.split(b":", 1)[1].strip() for v in head.split(b"\r\n")[1:]
                     if v.lower().startswith(b"upgrade:")][0]
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: " + token +
                      b"\r\nconnection: Upgrade\r\nx-backend: raw\r\n\r\n" + rest)
            if b"flood" in line:  # as fast as the proxy takes it
                chunk = b"f" * MIB
                while self.flooded < 200 * MIB:
                    c.sendall(chunk)
                    self.flooded += len(chunk)
                return
            if b"hold" in line:  # never ends: after the proxy's end, writes once poked
                while c.recv(65536):
                    pass
                self.got_eof.set()
                self.poke.wait(60)
                try:  # a connection the proxy closed fails a write (its RST) within a few
                    for _ in range(200):
                        c.sendall(b"x")
                        time.sleep(0.05)
                except OSError:
                    self.closed.set()
                return
            if b"sink" in line:  # reads nothing
                self.done.wait(60)
                return
            if b"slow" in line:  # reads slowly, keeps what it got
                time.sleep(0.5)
                while True:
                    data = c.recv(16384)
                    if not data:
                        self.closed.set()
                        return
                    with self.lock:
                        self.received += data
                    time.sleep(0.001)
            while True:
                data = c.recv(65536)
                if not data:
                    self.closed.set()
                    return
                with self.lock:
                    self.received += data
                if data.endswith(b"rst!"):
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if data.endswith(b"fin!"):
                    c.sendall(data)
                    c.shutdown(socket.SHUT_WR)
                    if not c.recv(1):
                        self.closed.set()
                    return
                c.sendall(data)
        except ConnectionResetError:
            self.reset.set()
            self.closed.set()
        except OSError:
            self.closed.set()
        finally:
            c.close()

    def stop(self):
        self.done.set()
        self.sock.close()


@pytest.fixture
def proxy(tmp_path):
    """start(*proxy_args) -> a rill server; each must exit 0 at the end (no leak under ASan)."""
    servers = []

    def start(*args):
        s = start_server(str(tmp_path), tls=False, extra=args)
        servers.append(s)
        return s

    yield start
    for s in servers:
        assert s.stop() == 0, s.stderr()


@pytest.fixture
def node_ws():
    be = NodeWs()
    yield be
    be.stop()


@pytest.fixture
def raw_backend():
    be = RawUpgradeBackend()
    yield be
    be.stop()


# ---- an HTTP/2 client for tunnels (python-h2) ------------------------------------------------

class H2Tunnels:
    """Extended CONNECT streams on one h2c connection to the proxy."""

    def __init__(self, port, timeout=30, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:  # rill's self-signed certificate: not checked here
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
            assert self.sock.selected_alpn_protocol() == "h2"
        self.port = port
        self.pongs = 0
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False))
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(1 << 24)
        self.sock.sendall(self.conn.data_to_send())
        self.responses, self.data, self.ended, self.reset = {}, {}, set(), {}
        self.settings = None
        while self.settings is None:
            self.pump()

    def connect(self, path, protocol="websocket", headers=(), end=False):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", protocol),
                                     (":scheme", "http"), (":path", path),
                                     (":authority", f"127.0.0.1:{self.port}"), *headers],
                               end_stream=end)
        self.data[sid] = b""
        self.flush()
        return sid

    def send(self, sid, data, end=False):
        self.conn.send_data(sid, data, end_stream=end)
        self.flush()

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def pump(self, timeout=30):
        self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the proxy closed the connection")
        for ev in self.conn.receive_data(data):
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                self.settings = ev.changed_settings
            elif isinstance(ev, h2.events.ResponseReceived):
                self.responses[ev.stream_id] = {k.decode() if isinstance(k, bytes) else k:
                                                v.decode() if isinstance(v, bytes) else v
                                                for k, v in ev.headers}
            elif isinstance(ev, h2.events.DataReceived):
                self.data[ev.stream_id] = self.data.get(ev.stream_id, b"") + ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.reset[ev.stream_id] = ev.error_code
            elif isinstance(ev, h2.events.PingAckReceived):
                self.pongs += 1
        self.flush()

    def wait(self, cond, timeout=30):
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, "timed out"
            self.pump(timeout)

    def response(self, sid):
        self.wait(lambda: sid in self.responses or sid in self.reset)
        return self.responses.get(sid)

    def close(self):
        self.sock.close()


def ws_exchange_h2(t, sid, reader, message):
    """Sends one text message on an open WebSocket stream and returns the answer's payload."""
    t.send(sid, ws_frame(message))
    got = []
    def have():
        got.extend(reader.feed(t.data[sid]))
        t.data[sid] = b""
        return got
    t.wait(have)
    return got[0]


# ---- HTTP/1.1 client to HTTP/1.1 backend (python3-websockets, Node's ws) ----------------------

def test_h1_websocket_deflate_and_subprotocol_end_to_end(proxy, node_ws):
    s = proxy("--proxy", f"/chat={node_ws.url()}")

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/chat/room?x=1",
                                      subprotocols=["first", "second"], compression="deflate",
                                      max_size=None) as ws:
            # the backend's choices, not rill's: rill's own server takes the first offer and
            # answers permessage-deflate without server_max_window_bits
            assert ws.subprotocol == "second"
            assert ws.response_headers["sec-websocket-extensions"] == \
                "permessage-deflate; server_max_window_bits=10"
            assert ws.response_headers["via"] == "1.1 rill"
            await ws.send("hello")
            assert await ws.recv() == "ws:hello"
            big = bytes(random.Random(1).choices(b"abcdefgh", k=3 * 1024 * 1024))
            await ws.send(big)
            assert await ws.recv() == b"ws:" + big
            await ws.send("head?")
            return json.loads(await ws.recv())

    head = asyncio.run(run())
    h = head["headers"]
    assert head["method"] == "GET" and head["url"] == "/chat/room?x=1"
    # the offer went on as the client made it; the key is the client's (the accept matched it)
    assert h["sec-websocket-extensions"].startswith("permessage-deflate")
    assert h["sec-websocket-protocol"] == "first, second"
    assert h["upgrade"] == "websocket" and h["connection"] == "Upgrade"
    assert h["host"] == f"127.0.0.1:{s.port}"
    assert h["x-forwarded-for"] == "127.0.0.1" and h["x-forwarded-proto"] == "http"
    assert h["via"] == "1.1 rill"


def test_h1_websocket_close_from_backend(proxy, node_ws):
    s = proxy("--proxy", f"/={node_ws.url()}")

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/") as ws:
            await ws.send("close")
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            return e.value.rcvd.code

    assert asyncio.run(run()) == 4001


def test_demo_websocket_still_served_beside_a_proxy(proxy, node_ws):
    s = proxy("--proxy", f"/chat={node_ws.url()}")

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/ws/echo") as ws:
            await ws.send("x")
            return await ws.recv()

    assert asyncio.run(run()) == "x"  # rill's own /ws/echo answered, not the backend
    t = H2Tunnels(s.port)
    try:  # the demo's `echo` tunnel outside the proxied prefix; under it the backend decides
        sid = t.connect("/elsewhere", protocol="echo")
        assert t.response(sid)[":status"] == "200"
        t.send(sid, b"abc")
        t.wait(lambda: t.data[sid] == b"abc")
        sid = t.connect("/chat/x", protocol="echo")
        assert t.response(sid)[":status"] == "400"  # Node's ws refuses an Upgrade to `echo`
    finally:
        t.close()


# ---- HTTP/2 extended CONNECT to an HTTP/1.1 backend -------------------------------------------

def test_h2_websocket_to_h1_backend(proxy, node_ws):
    s = proxy("--proxy", f"/chat={node_ws.url()}")
    t = H2Tunnels(s.port)
    try:
        assert t.settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL].new_value == 1
        sid = t.connect("/chat/h2", headers=[("sec-websocket-version", "13"),
                                             ("sec-websocket-extensions", "permessage-deflate"),
                                             ("sec-websocket-protocol", "x, y")])
        r = t.response(sid)
        assert r[":status"] == "200", r
        assert r["sec-websocket-protocol"] == "y"
        assert r["sec-websocket-extensions"] == "permessage-deflate; server_max_window_bits=10"
        assert "sec-websocket-accept" not in r and "upgrade" not in r and "connection" not in r
        reader = FrameReader(deflate=True)
        assert ws_exchange_h2(t, sid, reader, b"over h2") == (1, b"ws:over h2")
        op, payload = ws_exchange_h2(t, sid, reader, b"head?")
        h = json.loads(payload)["headers"]
        assert h["host"] == f"127.0.0.1:{s.port}" and h["via"] == "2 rill"
        assert h["sec-websocket-version"] == "13" and len(h["sec-websocket-key"]) == 24
        assert not any(k.startswith(":") for k in h)
        # the client's Close, the backend's answer, then END_STREAM both ways
        t.send(sid, ws_frame(struct.pack(">H", 1000), opcode=8))
        t.wait(lambda: sid in t.ended)
        assert reader.feed(t.data[sid])[0][0] == 8
        assert sid not in t.reset
    finally:
        t.close()


def test_h2_many_websockets_on_one_connection(proxy, node_ws):
    n = 1000
    s = proxy("--max-concurrent-streams", str(n + 10), "--proxy", f"/chat={node_ws.url()}")
    t = H2Tunnels(s.port, timeout=60)
    try:
        sids = [t.connect(f"/chat/{i}", headers=[("sec-websocket-version", "13")]) for i in range(n)]
        # within half the front's idle timeout (120 s): heads that wait for its timer fail here
        t.wait(lambda: all(sid in t.responses or sid in t.reset for sid in sids), timeout=60)
        assert all(t.responses[sid][":status"] == "200" for sid in sids)
        readers = {sid: FrameReader() for sid in sids}
        for i, sid in enumerate(sids):
            t.conn.send_data(sid, ws_frame(b"m%d" % i))
        t.flush()
        got = {}

        def all_back():
            for sid in sids:
                if sid not in got and t.data[sid]:
                    frames = readers[sid].feed(t.data[sid])
                    t.data[sid] = b""
                    if frames:
                        got[sid] = frames[0]
            return len(got) == n

        t.wait(all_back, timeout=60)
        assert all(got[sid] == (1, b"ws:m%d" % i) for i, sid in enumerate(sids))
        assert not t.reset
    finally:
        t.close()


# ---- generic tunnels, refusals -----------------------------------------------------------------

def test_h2_generic_tunnel_echo_and_recorded_head(proxy, raw_backend):
    s = proxy("--proxy", f"/t={raw_backend.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/t/raw?q=1", protocol="bytestream",
                        headers=[("x-custom", "kept"), ("cookie", "a=1"), ("cookie", "b=2")])
        r = t.response(sid)
        assert r[":status"] == "200" and r["x-backend"] == "raw" and r["via"] == "1.1 rill"
        t.send(sid, b"\x00\x01binary\xff")
        t.wait(lambda: t.data[sid] == b"\x00\x01binary\xff")
        t.send(sid, b"bye", end=True)  # the client's orderly close
        t.wait(lambda: sid in t.ended)
        assert raw_backend.closed.wait(10)
    finally:
        t.close()
    head = raw_backend.heads[0].decode()
    lines = head.split("\r\n")
    assert lines[0] == "GET /t/raw?q=1 HTTP/1.1"
    fields = [tuple(x.split(": ", 1)) for x in lines[1:] if x]
    names = [n for n, _ in fields]
    assert not any(n.startswith(":") for n in names)
    assert dict(fields)["host"] == f"127.0.0.1:{s.port}"
    assert names.count("host") == 1 and names.count("upgrade") == 1 and names.count("connection") == 1
    assert dict(fields)["upgrade"] == "bytestream" and dict(fields)["connection"] == "Upgrade"
    assert dict(fields)["x-custom"] == "kept" and dict(fields)["cookie"] == "a=1; b=2"
    assert dict(fields)["x-forwarded-for"] == "127.0.0.1"
    assert dict(fields)["x-forwarded-proto"] == "http" and dict(fields)["via"] == "2 rill"
    assert "sec-websocket-key" not in names  # not a WebSocket: no key made


def test_h1_generic_upgrade_echo_and_recorded_head(proxy, raw_backend):
    s = proxy("--proxy", f"/t={raw_backend.url()}")
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    try:
        # bytes right behind the head are the tunnel's first
        c.sendall(b"GET /t/x HTTP/1.1\r\nHost: example.test\r\nUpgrade: bytestream/2\r\n"
                  b"Connection: keep-alive, Upgrade\r\nKeep-Alive: 5\r\nX-Forwarded-For: 10.0.0.1\r\n"
                  b"\r\nearly")
        buf = b""
        while b"\r\n\r\n" not in buf or not buf.endswith(b"early"):
            buf += c.recv(4096)
        head, rest = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"\r\nupgrade: bytestream/2" in head.lower() and b"\r\nconnection: upgrade" in head.lower()
        assert rest == b"early"
        c.sendall(b"more")
        assert c.recv(100) == b"more"
    finally:
        c.close()
    assert raw_backend.closed.wait(10)  # the client's close ended the backend's connection
    lines = raw_backend.heads[0].decode().split("\r\n")
    assert lines[0] == "GET /t/x HTTP/1.1"
    fields = dict(tuple(x.split(": ", 1)) for x in lines[1:] if x)
    assert fields["host"] == "example.test" and fields["upgrade"] == "bytestream/2"
    assert fields["connection"] == "Upgrade" and "keep-alive" not in fields
    assert fields["x-forwarded-for"] == "10.0.0.1, 127.0.0.1" and fields["via"] == "1.1 rill"


def test_backend_refusal_goes_back(proxy, raw_backend):
    s = proxy("--proxy", f"/={raw_backend.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/deny", protocol="websocket", headers=[("sec-websocket-version", "13")])
        assert t.response(sid)[":status"] == "403"
        t.wait(lambda: sid in t.ended)
        assert t.data[sid] == b"denied\n"
    finally:
        t.close()
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    try:
        c.sendall(b"GET /deny HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        buf = b""
        while not buf.endswith(b"denied\n"):
            chunk = c.recv(4096)
            assert chunk, buf
            buf += chunk
        assert buf.startswith(b"HTTP/1.1 403 ") and b"x-backend: raw" in buf
    finally:
        c.close()


def test_plain_connect_refused(proxy, raw_backend):
    s = proxy("--proxy", f"/={raw_backend.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.conn.get_next_available_stream_id()
        t.conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "example.test:443")])
        t.flush()
        status = int(t.response(sid)[":status"])
        assert status >= 400
    finally:
        t.close()
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    try:
        c.sendall(b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
        assert int(c.recv(4096).split(b" ")[1]) >= 400
    finally:
        c.close()
    assert raw_backend.heads == []  # never an open proxy


def test_switch_not_asked_for_is_502(proxy, node_ws):
    """A backend that does not speak WebSocket at that path answers 404: the client gets it."""
    s = proxy("--proxy", f"/={node_ws.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/", protocol="not-websocket")
        # Node's ws answers an Upgrade that is not websocket with 400 (its own refusal)
        assert int(t.response(sid)[":status"]) >= 400
    finally:
        t.close()


# ---- in pieces, teardown, timeouts -----------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_h1_handshake_in_pieces(proxy, node_ws, seed):
    s = proxy("--proxy", f"/chat={node_ws.url()}")
    req = (b"GET /chat/p HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(req)), 12))
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for a, b in zip([0] + cuts, cuts + [len(req)]):
            c.sendall(req[a:b])
            time.sleep(0.01)  # separate reads at the proxy
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += c.recv(4096)
        head, rest = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head.lower().replace(
            b"s3pplmbitxaq9kygzzhzrbk+xoo=", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        frame = ws_frame(b"pieces")
        for i in range(len(frame)):  # the first frame a byte at a time
            c.sendall(frame[i:i + 1])
            time.sleep(0.002)
        reader = FrameReader()
        got = reader.feed(rest)
        while not got:
            got = reader.feed(c.recv(4096))
        assert got[0] == (1, b"ws:pieces")
    finally:
        c.close()


def test_h2_handshake_in_pieces(proxy, node_ws):
    s = proxy("--proxy", f"/chat={node_ws.url()}")
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                          (":path", "/chat/x"), (":authority", "127.0.0.1"),
                          ("sec-websocket-version", "13")])
    conn.send_data(1, ws_frame(b"early frame"))  # before the 200: held until the tunnel opens
    out = conn.data_to_send()
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(out)), 15))
    try:
        for a, b in zip([0] + cuts, cuts + [len(out)]):
            sock.sendall(out[a:b])
            time.sleep(0.01)
        reader, status, got = FrameReader(), None, []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            for ev in conn.receive_data(sock.recv(65536)):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[b":status"]
                elif isinstance(ev, h2.events.DataReceived):
                    got += reader.feed(ev.data)
            sock.sendall(conn.data_to_send())
        assert status == b"200" and got[0] == (1, b"ws:early frame")
    finally:
        sock.close()


def test_backend_reset_mid_tunnel_resets_the_client(proxy, raw_backend):
    s = proxy("--proxy", f"/={raw_backend.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/x", protocol="bytestream")
        assert t.response(sid)[":status"] == "200"
        t.send(sid, b"ping")
        t.wait(lambda: t.data[sid] == b"ping")
        t.send(sid, b"rst!")  # the backend dies: its connection is reset
        t.wait(lambda: sid in t.reset or sid in t.ended)
        assert sid in t.reset and sid not in t.ended
        # the connection and its other tunnels go on
        sid2 = t.connect("/y", protocol="bytestream")
        assert t.response(sid2)[":status"] == "200"
    finally:
        t.close()
    assert "rill serve: proxy: " in s.stderr()
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    try:  # HTTP/1.1: the connection is closed
        c.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: bytestream\r\nConnection: Upgrade\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += c.recv(4096)
        c.sendall(b"rst!")
        # the backend's reset comes on as a reset: a FIN (b"") would pass for the tunnel's end
        with pytest.raises(ConnectionResetError):
            while c.recv(4096):
                pass
    finally:
        c.close()


def test_backend_killed_mid_websocket(proxy, node_ws):
    s = proxy("--proxy", f"/={node_ws.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/", headers=[("sec-websocket-version", "13")])
        assert t.response(sid)[":status"] == "200"
        assert ws_exchange_h2(t, sid, FrameReader(), b"a") == (1, b"ws:a")
        node_ws.proc.kill()
        t.wait(lambda: sid in t.reset or sid in t.ended)
        # no WebSocket Close frame came: the client knows the WebSocket failed (1006)
        assert FrameReader().feed(t.data[sid]) == []
    finally:
        t.close()


def test_backend_clean_close_ends_the_stream(proxy, raw_backend):
    s = proxy("--proxy", f"/={raw_backend.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/x", protocol="bytestream")
        assert t.response(sid)[":status"] == "200"
        t.send(sid, b"fin!")
        t.wait(lambda: sid in t.ended)
        assert t.data[sid] == b"fin!" and sid not in t.reset
    finally:
        t.close()


def test_client_reset_closes_the_backend(proxy, raw_backend):
    s = proxy("--proxy", f"/={raw_backend.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/x", protocol="bytestream")
        assert t.response(sid)[":status"] == "200"
        t.conn.reset_stream(sid, error_code=8)  # CANCEL
        t.flush()
        assert raw_backend.closed.wait(10)
        assert raw_backend.reset.is_set()  # an abort, passed on as one: not an orderly end
    finally:
        t.close()


def test_handshake_timeout_and_open_tunnel_not_cut(proxy, raw_backend):
    s = proxy("--proxy-timeout", "300", "--proxy", f"/={raw_backend.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/silent", protocol="bytestream")
        assert t.response(sid)[":status"] == "504"
        sid = t.connect("/open", protocol="bytestream")
        assert t.response(sid)[":status"] == "200"
        time.sleep(1.0)  # well past --proxy-timeout: an open tunnel has no deadline of ours
        t.send(sid, b"still here")
        t.wait(lambda: t.data[sid] == b"still here")
    finally:
        t.close()
    assert "sent no response head within 300 ms" in s.stderr()


# ---- back-pressure: neither direction is held in the proxy's memory ---------------------------

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("front", ["h1", "h2"])
def test_client_that_reads_nothing_holds_the_backend(proxy, raw_backend, front):
    s = proxy("--proxy", f"/={raw_backend.url()}")
    before = rss_kib(s.proc.pid)
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        if front == "h1":
            c.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\nUpgrade: bytestream\r\n"
                      b"Connection: Upgrade\r\n\r\n")
        else:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(
                client_side=True, validate_outbound_headers=False))
            conn.initiate_connection()
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2 ** 31 - 1})
            conn.increment_flow_control_window(2 ** 30)
            c.sendall(conn.data_to_send())
            time.sleep(0.2)  # the proxy's SETTINGS (extended CONNECT) first
            conn.receive_data(c.recv(65536))
            conn.send_headers(1, [(":method", "CONNECT"), (":protocol", "bytestream"),
                                  (":scheme", "http"), (":authority", "x"), (":path", "/flood")])
            c.sendall(conn.data_to_send())
        time.sleep(3)  # reading nothing: the proxy must stop reading the backend
        grown = rss_kib(s.proc.pid) - before
        assert raw_backend.flooded < 200 * MIB  # held back...
        assert grown < 64 * 1024, grown  # ...and not by the proxy's memory
    finally:
        c.close()


def test_backend_that_reads_nothing_holds_the_client(proxy, raw_backend):
    s = proxy("--proxy", f"/={raw_backend.url()}")
    before = rss_kib(s.proc.pid)
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(b"GET /sink HTTP/1.1\r\nHost: x\r\nUpgrade: bytestream\r\nConnection: Upgrade\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += c.recv(4096)
    assert buf.startswith(b"HTTP/1.1 101 ")
    sent = 0

    def feed():
        nonlocal sent
        chunk = b"z" * MIB
        try:
            while sent < 200 * MIB:
                c.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    time.sleep(4)
    grown = rss_kib(s.proc.pid) - before
    try:
        assert sent < 200 * MIB  # held back...
        assert grown < 64 * 1024, grown  # ...and the proxy holds little of it
    finally:
        c.shutdown(socket.SHUT_RDWR)
        c.close()
        t.join(10)


# ---- HTTP/2 client to an HTTP/2 backend: the extended CONNECT forwarded as it is -------------

def test_h2_tunnels_to_h2c_backend(proxy, tmp_path):
    """The backend is another rill serve (its demo: WebSockets at /ws/echo, the `echo` tunnel)."""
    backend = start_server(str(tmp_path / "backend"), tls=False)
    try:
        s = proxy("--proxy", f"/=h2c://127.0.0.1:{backend.port}")
        t = H2Tunnels(s.port)
        try:
            sid = t.connect("/ws/echo", headers=[("sec-websocket-version", "13")])
            r = t.response(sid)
            assert r[":status"] == "200" and r["via"] == "2 rill", r
            reader = FrameReader()
            assert ws_exchange_h2(t, sid, reader, b"through two") == (1, b"through two")
            t.send(sid, ws_frame(struct.pack(">H", 1000), opcode=8))
            t.wait(lambda: sid in t.ended)
            assert reader.feed(t.data[sid])[0][0] == 8 and sid not in t.reset
            sid = t.connect("/anything", protocol="echo")
            assert t.response(sid)[":status"] == "200"
            t.send(sid, b"abc")
            t.send(sid, b"def", end=True)
            t.wait(lambda: sid in t.ended)
            assert t.data[sid] == b"abcdef" and sid not in t.reset
            sid = t.connect("/anything", protocol="not-served")
            assert t.response(sid)[":status"] == "501"  # the backend's own refusal
        finally:
            t.close()
    finally:
        assert backend.stop() == 0, backend.stderr()


def test_h2c_backend_without_extended_connect_is_502(proxy, tmp_path):
    backend = start_server(str(tmp_path / "backend"), tls=False, extra=["--no-connect-protocol"])
    try:
        s = proxy("--proxy", f"/=h2c://127.0.0.1:{backend.port}")
        t = H2Tunnels(s.port)
        try:
            sid = t.connect("/ws/echo", headers=[("sec-websocket-version", "13")])
            assert t.response(sid)[":status"] == "502"
        finally:
            t.close()
        assert "rill serve: proxy: h2c://" in s.stderr()
    finally:
        assert backend.stop() == 0, backend.stderr()


def test_h1_tunnels_to_h2c_backend(proxy, tmp_path):
    """An HTTP/1.1 Upgrade becomes an extended CONNECT to the HTTP/2 backend; its 200 is the 101
    (with the Sec-WebSocket-Accept for the client's key, made by the proxy)."""
    backend = start_server(str(tmp_path / "backend"), tls=False)
    try:
        s = proxy("--proxy", f"/=h2c://127.0.0.1:{backend.port}")

        async def run():
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/ws/echo") as ws:
                await ws.send("h1 to h2")
                return await ws.recv()

        assert asyncio.run(run()) == "h1 to h2"
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        try:
            c.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(4096)
            assert buf.startswith(b"HTTP/1.1 101 ") and b"upgrade: echo" in buf.lower()
            c.sendall(b"raw bytes")
            got = buf.split(b"\r\n\r\n", 1)[1]
            while got != b"raw bytes":
                got += c.recv(4096)
        finally:
            c.close()
    finally:
        assert backend.stop() == 0, backend.stderr()


def test_h1_client_last_bytes_before_its_close_reach_the_backend(proxy, raw_backend):
    """An HTTP/1.1 client that sends and closes at once (a WebSocket's last Close frame): its FIN
    is an orderly end, so what it sent still goes to the backend before that connection closes."""
    s = proxy("--proxy", f"/={raw_backend.url()}")
    for i in range(5):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: bytestream\r\nConnection: Upgrade\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += c.recv(4096)
        raw_backend.closed.clear()
        c.sendall(b"last words %d" % i)
        c.close()
        assert raw_backend.closed.wait(10)
        assert raw_backend.received.endswith(b"last words %d" % i)


def test_h1_client_close_behind_a_slow_backend_loses_nothing(proxy, raw_backend):
    s = proxy("--proxy", f"/={raw_backend.url()}")
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nUpgrade: bytestream\r\nConnection: Upgrade\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += c.recv(4096)
    data = random.Random(5).randbytes(2 * MIB)
    c.sendall(data)
    c.close()  # while most of it is still on its way
    assert raw_backend.closed.wait(30)
    assert len(raw_backend.received) == len(data) and raw_backend.received == data


def test_websocket_to_https_backend(proxy, tmp_path):
    """An https:// backend (another rill serve, its demo's /ws/echo over TLS): the tunnel's own
    connection speaks TLS with ALPN http/1.1."""
    backend = start_server(str(tmp_path / "backend"), tls=True)
    try:
        s = proxy("--proxy-insecure", "--proxy", f"/=https://localhost:{backend.tls_port}")

        async def run():
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/ws/echo") as ws:
                await ws.send("over tls")
                return await ws.recv()

        assert asyncio.run(run()) == "over tls"
        t = H2Tunnels(s.port)
        try:
            sid = t.connect("/ws/echo", headers=[("sec-websocket-version", "13")])
            assert t.response(sid)[":status"] == "200"
            assert ws_exchange_h2(t, sid, FrameReader(), b"h2 then tls") == (1, b"h2 then tls")
        finally:
            t.close()
    finally:
        assert backend.stop() == 0, backend.stderr()


def test_unreachable_backend_is_502(proxy):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # nothing listens there once closed
    s = proxy("--proxy", f"/=http://127.0.0.1:{port}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/ws", headers=[("sec-websocket-version", "13")])
        assert t.response(sid)[":status"] == "502"
    finally:
        t.close()
    assert f"rill serve: proxy: http://127.0.0.1:{port}: cannot connect" in s.stderr()


def test_backend_101_for_another_key_is_502(proxy, raw_backend):
    s = proxy("--proxy", f"/={raw_backend.url()}")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/badaccept", headers=[("sec-websocket-version", "13")])
        assert t.response(sid)[":status"] == "502"
        t.wait(lambda: sid in t.ended)
        assert b"hi" not in t.data[sid]  # nothing of the refused switch reaches the client
    finally:
        t.close()
    assert "does not accept the WebSocket handshake" in s.stderr()


@pytest.mark.parametrize("transport", ["h2", "http1.1"])
def test_rill_ws_client_through_the_proxy(proxy, node_ws, transport):
    """rill's own WebSocket client (rill ws): over an HTTP/2 stream (it sees extended CONNECT in
    the proxy's SETTINGS) or an HTTP/1.1 Upgrade, messages echoed and a clean close (1000)."""
    s = proxy("--proxy", f"/chat={node_ws.url()}")
    args = [RILL_BIN, "ws", "-v"] + (["--http1.1"] if transport == "http1.1" else [])
    r = subprocess.run(args + [f"ws://127.0.0.1:{s.port}/chat/x"], input=b"hello\nworld\n",
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"ws:hello\nws:world\n"
    want = "an HTTP/2 stream (RFC 8441)" if transport == "h2" else "HTTP/1.1"
    assert f"connected over {want}, permessage-deflate" in r.stderr.decode()
    assert "closed (1000)" in r.stderr.decode()


def test_unreachable_backend_gives_way_to_the_next(proxy, raw_backend):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
    s = proxy("--proxy", f"/=http://127.0.0.1:{dead},{raw_backend.url()}")
    t = H2Tunnels(s.port)
    try:
        for i in range(2):  # round robin: one of them starts at the dead backend
            sid = t.connect(f"/x/{i}", protocol="bytestream")
            assert t.response(sid)[":status"] == "200"
            t.send(sid, b"alive %d" % i)
            t.wait(lambda: t.data[sid] == b"alive %d" % i)
    finally:
        t.close()
    assert (f"rill serve: proxy: http://127.0.0.1:{dead}: cannot connect to 127.0.0.1:{dead}: "
            f"Connection refused; trying {raw_backend.url()}") in s.stderr()


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("listen", ["127.0.0.1", "::1"])
def test_tunnel_to_a_name_tries_each_address(proxy, listen):
    """A backend named localhost (::1 and 127.0.0.1, resolved on the worker's loop) listening on
    one of them only: the tunnels race the addresses as requests do, so the one that answers
    takes them, an HTTP/2 stream and an HTTP/1.1 Upgrade alike, with nothing on stderr."""
    if listen == "::1" and not ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    be = RawUpgradeBackend(listen)
    try:
        s = proxy("--proxy", f"/=http://localhost:{be.port}")
        t = H2Tunnels(s.port)
        try:
            sid = t.connect("/name/h2", protocol="bytestream")
            assert t.response(sid)[":status"] == "200"
            t.send(sid, b"over h2")
            t.wait(lambda: t.data[sid] == b"over h2")
        finally:
            t.close()
        with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
            head, rest = upgrade_head(c, b"/name/h1")
            assert head.startswith(b"http/1.1 101 "), head
            echo_through(c, b"over http/1.1", rest)
        assert len(be.heads) == 2 and all(b"host: " in h.lower() for h in be.heads)
        assert "rill serve: proxy:" not in s.stderr(), s.stderr()
    finally:
        be.stop()


def test_unresolvable_tunnel_backend_is_502(proxy):
    """A backend name without an address: the tunnel's client gets a 502 (an HTTP/2 stream and an
    HTTP/1.1 Upgrade alike), with one line each on stderr naming the backend and the name."""
    s = proxy("--proxy", "/=http://no-such-host.invalid:80")
    t = H2Tunnels(s.port)
    try:
        sid = t.connect("/ws", headers=[("sec-websocket-version", "13")])
        assert t.response(sid)[":status"] == "502"
        t.wait(lambda: sid in t.ended)
    finally:
        t.close()
    with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
        head, _ = upgrade_head(c, b"/x")
        assert head.startswith(b"http/1.1 502 "), head
    lines = [l for l in s.stderr().splitlines() if "no-such-host" in l]
    assert len(lines) == 2, s.stderr()
    assert all(l.startswith("rill serve: proxy: http://no-such-host.invalid:80: cannot resolve "
                            "no-such-host.invalid: ") for l in lines), lines


def test_unresolvable_tunnel_backend_gives_way_to_the_next(proxy, raw_backend):
    """As an unreachable one: nothing was sent to it, so the route's next backend takes the
    tunnel."""
    s = proxy("--proxy", f"/=http://no-such-host.invalid:80,{raw_backend.url()}")
    for i in range(2):  # round robin: one of them starts at the unresolvable backend
        with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
            head, rest = upgrade_head(c, b"/r/%d" % i)
            assert head.startswith(b"http/1.1 101 "), head
            echo_through(c, b"resolved %d" % i, rest)
    assert "rill serve: proxy: http://no-such-host.invalid:80: cannot resolve no-such-host.invalid: " \
        in s.stderr() and f"; trying {raw_backend.url()}" in s.stderr()


@pytest.mark.parametrize("front", ["h1", "h2"])
@pytest.mark.parametrize("first", ["client", "backend", "client-close"])
def test_half_closed_tunnel_closed_after_its_deadline(proxy, raw_backend, front, first):
    """One side of a tunnel ends and the other neither ends nor sends: after the route's
    half-close timeout the proxy closes both (the client's stream reset, or its connection closed;
    the backend's connection closed), with one line on stderr. client-close: an HTTP/1.1 client
    that closes its socket, which the proxy cannot tell from a half-close."""
    if first == "client-close" and front == "h2":
        pytest.skip("an HTTP/2 client's close ends its connection, not a tunnel's side")
    s = proxy("--proxy", f"/={raw_backend.url()}", "--proxy-half-close-timeout", "300")
    path = b"/hold" if first != "backend" else b"/echo"
    ended, other = ("backend", "client") if first == "backend" else ("client", "backend")
    line = (f"rill serve: proxy: {raw_backend.url()}: the {ended} ended its side of the tunnel "
            f"and the {other} sent nothing and did not end within 300 ms: closed")
    c = t = None
    try:
        if front == "h1":
            c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
            head, rest = upgrade_head(c, path)
            assert head.startswith(b"http/1.1 101 "), head
            if first == "backend":
                c.sendall(b"bye fin!")
                assert h1_read_to_eof(c, rest) == b"bye fin!"  # the backend's end went on
            elif first == "client-close":
                c.close()
            else:
                c.shutdown(socket.SHUT_WR)
                try:
                    assert h1_read_to_eof(c, rest) == b""  # closed by the proxy, not timed out
                except ConnectionResetError:
                    pass
        else:
            t = H2Tunnels(s.port)
            sid = t.connect(path.decode(), protocol="bytestream")
            assert t.response(sid)[":status"] == "200"
            if first == "backend":
                t.send(sid, b"bye fin!")
                t.wait(lambda: sid in t.ended or sid in t.reset)
                assert sid in t.ended and t.data[sid] == b"bye fin!"
            else:
                t.send(sid, b"", end=True)
            t.wait(lambda: sid in t.reset)  # the proxy's reset, after the deadline
        wait_stderr(s, line)
        if first != "backend":
            assert raw_backend.got_eof.is_set()  # the client's end went on first
            raw_backend.poke.set()  # its writes now find the connection closed
        assert raw_backend.closed.wait(20), "the proxy kept the backend's connection"
        assert s.stderr().count(line) == 1, s.stderr()
    finally:
        if c:
            c.close()
        if t:
            t.close()


# ---- tunnels and the configuration file: reload, health, least-connections -------------------

def upgrade_head(c, path, token=b"bytestream"):
    """Sends an HTTP/1.1 Upgrade for path on c; returns (the head, bytes after it)."""
    c.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: " + token +
              b"\r\nConnection: Upgrade\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        assert d, buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.lower(), rest


def echo_through(c, data, rest=b""):
    c.sendall(data)
    got = rest
    while len(got) < len(data):
        d = c.recv(65536)
        assert d, got
        got += d
    assert got == data


class Late101:
    """A tunnel backend that answers its first Upgrade with a 101 only once told (go), then
    echoes: the 101 comes after whatever the test did meanwhile (a reload)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.got, self.go = threading.Event(), threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def run(self):
        c, _ = self.sock.accept()
        c.settimeout(60)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                head += c.recv(4096)
            self.got.set()
            self.go.wait(60)
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: bytestream\r\n"
                      b"connection: Upgrade\r\n\r\n")
            while True:
                data = c.recv(65536)
                if not data:
                    return
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.go.set()
        self.sock.close()


def config_server(tmp_path, text, threads=2):
    path = tmp_path / "rill.yaml"
    path.write_text(text)
    s = start_server(str(tmp_path), tls=False, extra=["--config", str(path)], threads=threads)
    s.config = path
    return s


def wait_stderr(s, text, count=1, timeout=20):
    deadline = time.monotonic() + timeout
    while s.stderr().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} on stderr: {s.stderr()}"
        time.sleep(0.02)


def test_tunnel_keeps_its_configuration_across_a_reload(tmp_path, raw_backend):
    """A tunnel waiting for its 101 while a reload drops its route: the answer still gets the old
    route's field edits (its configuration is held until the tunnel ends: under ASan, a freed
    one would be a use after free), then bytes flow; new tunnels take the new routes."""
    late = Late101()
    s = config_server(tmp_path, f"routes:\n  - prefix: /t\n    backends: [{late.url()}]\n"
                                "    response-headers:\n      set: {x-route: old}\n")
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
            c.sendall(b"GET /t/x HTTP/1.1\r\nHost: x\r\nUpgrade: bytestream\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            assert late.got.wait(20)
            s.config.write_text(f"routes:\n  - prefix: /u\n    backends: [{raw_backend.url()}]\n"
                                "    response-headers:\n      set: {x-route: new}\n")
            s.proc.send_signal(signal.SIGHUP)
            wait_stderr(s, "configuration reloaded")
            with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c2:
                head, rest = upgrade_head(c2, b"/u/y")
                assert head.startswith(b"http/1.1 101 ") and b"x-route: new" in head, head
                echo_through(c2, b"new route", rest)
            late.go.set()
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                assert d, buf
                buf += d
            head, rest = buf.split(b"\r\n\r\n", 1)
            assert head.lower().startswith(b"http/1.1 101 ") and b"x-route: old" in head.lower()
            echo_through(c, b"old route, still open", rest)
    finally:
        late.stop()
        assert s.stop() == 0, s.stderr()


def test_unreachable_tunnel_backend_is_marked_down(proxy, raw_backend):
    """Passive health as for requests: once a tunnel could not connect to a backend, the next
    tunnels skip it (one 'trying' line for four tunnels, round robin starting at the dead one)."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
    s = proxy("--proxy", f"/=http://127.0.0.1:{dead},{raw_backend.url()}")
    for i in range(4):
        with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
            head, rest = upgrade_head(c, b"/h/%d" % i)
            assert head.startswith(b"http/1.1 101 "), head
            echo_through(c, b"up %d" % i, rest)
    assert s.stderr().count(f"127.0.0.1:{dead}: Connection refused; trying") == 1, s.stderr()


def test_half_close_timeout_from_the_file_flag_and_route(tmp_path, raw_backend):
    """`timeout: half-close` as the other timeouts: the flag wins over the file's `proxy:`, a
    route's own wins over both; a bad flag value is exit 2."""
    path = tmp_path / "rill.yaml"
    path.write_text(f"""proxy:
  timeout: {{half-close: 60s}}
routes:
  - prefix: /defaults
    backends: [{raw_backend.url()}]
  - prefix: /own
    backends: [{raw_backend.url()}]
    timeout: {{half-close: 250ms}}
""")
    s = start_server(str(tmp_path), tls=False,
                     extra=["--config", str(path), "--proxy-half-close-timeout", "300"])
    try:
        for prefix in (b"/defaults", b"/own"):
            with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
                head, rest = upgrade_head(c, prefix + b"/hold")
                assert head.startswith(b"http/1.1 101 "), head
                c.shutdown(socket.SHUT_WR)
                try:
                    assert h1_read_to_eof(c, rest) == b""
                except ConnectionResetError:
                    pass
        wait_stderr(s, "did not end within 300 ms: closed")
        wait_stderr(s, "did not end within 250 ms: closed")
    finally:
        raw_backend.poke.set()
        assert s.stop() == 0, s.stderr()
    r = subprocess.run([RILL_BIN, "serve", "--proxy-half-close-timeout", "0"], capture_output=True,
                       timeout=30)
    assert r.returncode == 2 and b"--proxy-half-close-timeout" in r.stderr, r


def test_open_tunnels_count_for_least_connections(tmp_path):
    """With least-connections an open tunnel counts on its backend: after one tunnel on A and
    one on B (closed again), the third goes to B, where round robin's turn would be A."""
    a, b = RawUpgradeBackend(), RawUpgradeBackend()
    s = config_server(tmp_path, f"routes:\n  - prefix: /\n    backends: [{a.url()}, {b.url()}]\n"
                                "    balance: least-connections\n", threads=1)
    try:
        c1 = socket.create_connection(("127.0.0.1", s.port), timeout=20)
        head, rest = upgrade_head(c1, b"/x/1")
        assert head.startswith(b"http/1.1 101 "), head
        with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c2:
            head, rest2 = upgrade_head(c2, b"/x/2")
            echo_through(c2, b"two", rest2)
            # our end, then the backend's comes back (a half-close each way): the proxy has let
            # go of the tunnel by the time its FIN reaches us
            c2.shutdown(socket.SHUT_WR)
            assert c2.recv(1) == b""
        first = a if any(b"/x/1" in h for h in a.heads) else b
        second = b if first is a else a
        assert any(b"/x/2" in h for h in second.heads)
        assert second.closed.wait(20)  # the proxy let go of tunnel 2
        with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c3:
            head, rest3 = upgrade_head(c3, b"/x/3")
            echo_through(c3, b"three", rest3)
        assert any(b"/x/3" in h for h in second.heads), (a.heads, b.heads)
        echo_through(c1, b"one still open", rest)
        c1.close()
    finally:
        a.stop()
        b.stop()
        assert s.stop() == 0, s.stderr()


def test_tunnel_connect_timeout_before_first_byte(tmp_path):
    """A route's connect timeout bounds a tunnel's TLS handshake that never finishes: 502 well
    before its first-byte timeout (as for requests)."""
    mute = socket.socket()  # accepts (the kernel's backlog) and never speaks TLS
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    port = mute.getsockname()[1]
    s = config_server(tmp_path, f"routes:\n  - prefix: /\n    backends: [https://127.0.0.1:{port}]\n"
                                "    timeout: {connect: 300ms, first-byte: 20s}\n")
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
            began = time.monotonic()
            head, _ = upgrade_head(c, b"/x")
            assert head.startswith(b"http/1.1 502 "), head
            assert time.monotonic() - began < 10
        assert (f"https://127.0.0.1:{port}: connecting to 127.0.0.1:{port} timed out after 300 ms"
                in s.stderr())
    finally:
        mute.close()
        assert s.stop() == 0, s.stderr()


def test_tunnel_connect_timeout_without_first_byte_timeout_leaves_the_timer(tmp_path, raw_backend):
    """Connected in time with no first-byte timeout: nothing is left to wait for, so the timer
    stays off (it must not fire again and again while the backend is silent: the proxy's CPU time
    over a second of waiting stays small)."""
    s = config_server(tmp_path, f"routes:\n  - prefix: /\n    backends: [{raw_backend.url()}]\n"
                                "    timeout: {connect: 100ms, first-byte: 0}\n", threads=1)

    def cpu():
        with open(f"/proc/{s.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
            c.sendall(b"GET /silent HTTP/1.1\r\nHost: x\r\nUpgrade: bytestream\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            deadline = time.monotonic() + 20
            while not any(b"/silent" in h for h in raw_backend.heads):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            time.sleep(0.3)  # past the connect timeout
            before = cpu()
            time.sleep(1.0)
            assert cpu() - before < 0.5
    finally:
        assert s.stop() == 0, s.stderr()


# ---- half-close: each direction ends on its own ----------------------------------------------

class HalfCloseBackend:
    """tests/integration/halfclose_backend.js: an HTTP/1.1 Upgrade backend over TCP or TLS, or an
    extended CONNECT one over h2c. /after-eof answers only after the client's end; /first/N sends
    N bytes and ends its side first, then reports what the client still sent (reports())."""

    def __init__(self, mode, workdir):
        argv = ["node", os.path.join(HERE, "halfclose_backend.js"), mode]
        if mode == "tls":
            cert, key = os.path.join(workdir, "be-cert.pem"), os.path.join(workdir, "be-key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                            "-subj", "/CN=localhost", "-days", "1"], check=True,
                           capture_output=True)
            argv += [cert, key]
        self.mode = mode
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("PORT "), (line, self.proc.stderr.read())
        self.port = int(line.split()[1])
        self.lines = queue.Queue()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def report(self, timeout=30):
        return self.lines.get(timeout=timeout)

    def url(self):
        return {"tcp": f"http://127.0.0.1:{self.port}", "tls": f"https://localhost:{self.port}",
                "h2c": f"h2c://127.0.0.1:{self.port}"}[self.mode]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def pattern(n):
    """What /first/N sends."""
    return bytes(((i * 31 + (i >> 8) * 7) & 255) for i in range(n))


def cut(rng, data):
    """data in pieces cut at random points (some empty pieces too)."""
    points = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 8)))
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


def answer_for(data):
    return b"len=%d sha=%s\n" % (len(data), hashlib.sha256(data).hexdigest().encode()) + data


def h2_send_all(t, sid, data, end=False):
    """DATA within the flow-control windows, waiting for WINDOW_UPDATEs as needed."""
    while data:
        assert sid not in t.reset, f"stream {sid} reset by the proxy ({t.reset[sid]!r})"
        room = min(t.conn.local_flow_control_window(sid), t.conn.max_outbound_frame_size)
        if room <= 0:
            t.pump()
            continue
        t.conn.send_data(sid, data[:room])
        data = data[room:]
        t.flush()
    if end:
        t.conn.end_stream(sid)
        t.flush()


def h1_open(c, path):
    head, rest = upgrade_head(c, path)
    assert head.startswith(b"http/1.1 101 "), head
    return rest


def h1_read_to_eof(c, got=b""):
    while True:
        d = c.recv(65536)
        if not d:
            return got
        got += d


def h1_tls_client(tmp_path, port, path, first, cuts, second=b""):
    """halfclose_client.js: the HTTP/1.1 tunnel over TLS, its own end a close_notify and a FIN;
    returns what came after the 101."""
    files = [str(tmp_path / n) for n in ("first.bin", "second.bin", "out.bin")]
    for f, data in zip(files, (first, second)):
        with open(f, "wb") as out:
            out.write(data)
    r = subprocess.run(["node", os.path.join(HERE, "halfclose_client.js"), str(port), path, files[0],
                        ",".join(str(c) for c in cuts) or "-", files[1], files[2]],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(files[2], "rb") as f:
        return f.read()


def cut_points(rng, n):
    return sorted(rng.randrange(n + 1) for _ in range(rng.randrange(1, 8)))


@pytest.fixture(params=["tcp", "tls", "h2c"])
def halfclose_backend(request, tmp_path):
    be = HalfCloseBackend(request.param, str(tmp_path))
    yield be
    be.stop()


def halfclose_proxy(tmp_path, be):
    return start_server(str(tmp_path / "proxy"), tls=True,
                        extra=["--proxy-insecure", "--proxy", f"/={be.url()}"])


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("front", ["h1", "h1-tls", "h2c", "h2-tls"])
def test_client_half_close_still_gets_the_whole_answer(tmp_path, halfclose_backend, front, seed):
    """The client sends (cut at random points), ends its side (a FIN, END_STREAM), and the backend,
    which answers only after that end, still gets its whole answer through: the proxy passes the
    end on as a half-close (shutdown(SHUT_WR), close_notify, END_STREAM) instead of closing."""
    rng = random.Random(f"{front}{halfclose_backend.mode}{seed}")
    data = rng.randbytes(rng.choice([0, 1, 700, 70_000, 1_300_000]))
    early = seed == 2  # everything, its end too, sent before the tunnel's answer came
    s = halfclose_proxy(tmp_path, halfclose_backend)
    try:
        if front == "h1":
            with socket.create_connection(("127.0.0.1", s.port), timeout=30) as c:
                if early:
                    c.sendall(b"GET /after-eof HTTP/1.1\r\nHost: x\r\nUpgrade: bytestream\r\n"
                              b"Connection: Upgrade\r\n\r\n" + data)
                    c.shutdown(socket.SHUT_WR)
                    head, rest = b"", b""
                    while b"\r\n\r\n" not in head:
                        d = c.recv(65536)
                        assert d, head
                        head += d
                    head, rest = head.split(b"\r\n\r\n", 1)
                    assert head.startswith(b"HTTP/1.1 101 "), head
                else:
                    rest = h1_open(c, b"/after-eof")
                    for piece in cut(rng, data):
                        c.sendall(piece)
                    c.shutdown(socket.SHUT_WR)
                assert h1_read_to_eof(c, rest) == answer_for(data)
        elif front == "h1-tls":
            got = h1_tls_client(tmp_path, s.tls_port, "/after-eof", data, cut_points(rng, len(data)))
            assert got == answer_for(data)
        else:
            t = H2Tunnels(s.tls_port if front == "h2-tls" else s.port, tls=front == "h2-tls")
            try:
                sid = t.connect("/after-eof", protocol="bytestream")
                if early:
                    h2_send_all(t, sid, data, end=True)
                assert t.response(sid)[":status"] == "200"
                if not early:
                    for piece in cut(rng, data):
                        h2_send_all(t, sid, piece)
                    t.conn.end_stream(sid)
                    t.flush()
                t.wait(lambda: sid in t.ended or sid in t.reset)
                assert sid not in t.reset and t.data[sid] == answer_for(data)
            finally:
                t.close()
    finally:
        assert s.stop() == 0, s.stderr()


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("front", ["h1", "h1-tls", "h2c", "h2-tls"])
def test_backend_half_close_lets_the_client_go_on(tmp_path, halfclose_backend, front, seed):
    """The mirror: the backend sends and ends its side first; the client gets all of it and the
    end (END_STREAM, a FIN), goes on sending (cut at random points), then ends; the backend
    receives every byte, and the tunnel ends cleanly (no reset)."""
    rng = random.Random(f"{front}{halfclose_backend.mode}{seed}")
    n = rng.choice([0, 5, 90_000, 1_100_000])
    before, after = rng.randbytes(rng.randrange(3000)), rng.randbytes(rng.choice([1, 800, 600_000]))
    s = halfclose_proxy(tmp_path, halfclose_backend)
    try:
        path = f"/first/{n}"
        if front == "h1":
            with socket.create_connection(("127.0.0.1", s.port), timeout=30) as c:
                rest = h1_open(c, path.encode())
                c.sendall(before)
                assert h1_read_to_eof(c, rest) == pattern(n)  # the backend's end: a FIN
                for piece in cut(rng, after):
                    c.sendall(piece)
                c.shutdown(socket.SHUT_WR)
                got = halfclose_backend.report()
                assert c.recv(1) == b""  # closed in order once both ends went
        elif front == "h1-tls":
            assert h1_tls_client(tmp_path, s.tls_port, path, before, cut_points(rng, len(before)),
                                 after) == pattern(n)
            got = halfclose_backend.report()
        else:
            t = H2Tunnels(s.tls_port if front == "h2-tls" else s.port, tls=front == "h2-tls")
            try:
                sid = t.connect(path, protocol="bytestream")
                assert t.response(sid)[":status"] == "200"
                h2_send_all(t, sid, before)
                t.wait(lambda: sid in t.ended or sid in t.reset)
                assert sid not in t.reset and t.data[sid] == pattern(n)
                for piece in cut(rng, after):
                    h2_send_all(t, sid, piece)
                t.conn.end_stream(sid)
                t.flush()
                got = halfclose_backend.report()
                t.conn.ping(b"halfdone")
                t.flush()
                t.wait(lambda: t.pongs)
                assert sid not in t.reset
            finally:
                t.close()
        assert got == {"path": path, "len": len(before + after),
                       "sha": hashlib.sha256(before + after).hexdigest()}
    finally:
        assert s.stop() == 0, s.stderr()


@pytest.mark.parametrize("first", ["client", "backend"])
def test_half_close_deadline_to_h2c_backend(tmp_path, first):
    """A tunnel that goes as an extended CONNECT to an h2c:// backend has the same deadline: one
    side ended (END_STREAM) and the other quiet for the half-close timeout, both streams reset."""
    be = HalfCloseBackend("h2c", str(tmp_path))
    s = start_server(str(tmp_path / "proxy"), tls=False,
                     extra=["--proxy", f"/={be.url()}", "--proxy-half-close-timeout", "300"])
    try:
        t = H2Tunnels(s.port)
        try:
            sid = t.connect("/hold" if first == "client" else "/first/5", protocol="bytestream")
            assert t.response(sid)[":status"] == "200"
            if first == "client":
                t.send(sid, b"abc", end=True)
            else:
                t.wait(lambda: sid in t.ended or sid in t.reset)
                assert sid in t.ended and t.data[sid] == pattern(5)
            t.wait(lambda: sid in t.reset)
        finally:
            t.close()
        ended, other = ("client", "backend") if first == "client" else ("backend", "client")
        line = (f"rill serve: proxy: {be.url()}: the {ended} ended its side of the tunnel and the "
                f"{other} sent nothing and did not end within 300 ms: closed")
        wait_stderr(s, line)
        if first == "client":  # the backend's stream was reset, not left open
            assert be.report() == {"path": "/hold", "len": 3, "closed": True}
        assert s.stderr().count(line) == 1, s.stderr()
    finally:
        be.stop()
        assert s.stop() == 0, s.stderr()


def test_tunnels_to_https_backend_over_h2(tmp_path):
    """Once the worker has seen an https:// backend choose h2 by ALPN (a request went there), its
    tunnels go as extended CONNECTs on that HTTP/2 connection (via: 2 rill; the demo's `echo`
    tunnel is HTTP/2 only), half-close included; a backend whose h2 refuses extended CONNECT
    (--no-connect-protocol) gets them as HTTP/1.1 Upgrades on connections of their own instead,
    the first one too."""
    servers = []
    try:
        for name, extra in (("h2", []), ("plain", ["--no-connect-protocol"])):
            backend = start_server(str(tmp_path / name), tls=True, extra=extra)
            servers.append(backend)
            s = start_server(str(tmp_path / (name + "-proxy")), tls=False, threads=1,
                             extra=["--proxy-insecure", "--proxy",
                                    f"/=https://localhost:{backend.tls_port}"])
            servers.append(s)
            # a request first: the worker learns the backend's protocol
            r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                "--http2-prior-knowledge", f"http://127.0.0.1:{s.port}/"],
                               capture_output=True, timeout=30)
            assert r.stdout == b"200", r
            t = H2Tunnels(s.port)
            try:
                if name == "h2":
                    sid = t.connect("/any", protocol="echo")
                    r = t.response(sid)
                    assert r[":status"] == "200" and r["via"] == "2 rill", r
                    data = random.Random(3).randbytes(200_000)
                    for piece in cut(random.Random(4), data):
                        h2_send_all(t, sid, piece)
                    t.conn.end_stream(sid)
                    t.flush()
                    t.wait(lambda: sid in t.ended or sid in t.reset)
                    assert sid not in t.reset and t.data[sid] == data
                sid = t.connect("/ws/echo", headers=[("sec-websocket-version", "13")])
                r = t.response(sid)
                assert r[":status"] == "200", r
                assert r["via"] == ("2 rill" if name == "h2" else "1.1 rill"), r  # an Upgrade
                assert ws_exchange_h2(t, sid, FrameReader(), b"over h2") == (1, b"over h2")
            finally:
                t.close()

            async def run():
                async with websockets.connect(f"ws://127.0.0.1:{s.port}/ws/echo") as ws:
                    await ws.send("h1 front")
                    return await ws.recv()

            assert asyncio.run(run()) == "h1 front"
            assert "rill serve: proxy:" not in s.stderr(), s.stderr()
    finally:
        for srv in servers:
            assert srv.stop() == 0, srv.stderr()
