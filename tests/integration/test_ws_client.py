"""The WebSocket client (`rill ws`) on the connection layer, against servers that push it where a
long-lived client connection goes: PINGs spread over time (the HTTP/2 engine's flood buckets must
refill on the connection's clock), a server that never acknowledges our SETTINGS (the engine's
SETTINGS timeout must fire and end the connection with a clear error), and handshake answers that
arrive a byte per write (HTTP/1.1 101 head; HTTP/2 SETTINGS, HEADERS, DATA).

The HTTP/2 server is python3-h2 (RFC 8441 extended CONNECT enabled) with a WebSocket echo on the
CONNECT stream; what it writes passes through one function that can cut it into single bytes or
drop its SETTINGS ACKs. The HTTP/1.1 server is a plain socket speaking RFC 6455 by hand."""
import base64
import hashlib
import os
import queue
import socket
import struct
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

from conftest import RILL_BIN

OP_TEXT, OP_CLOSE = 0x1, 0x8
SETTINGS_FRAME, ACK = 0x4, 0x1
SETTINGS_TIMEOUT, ENHANCE_YOUR_CALM = 0x4, 0xB
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---- WebSocket frames (RFC 6455 §5.2) -----------------------------------------------------------

def server_frame(opcode, payload):
    """An unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n <= 0xFFFF:
        head = bytes([0x80 | opcode, 126]) + struct.pack(">H", n)
    else:
        head = bytes([0x80 | opcode, 127]) + struct.pack(">Q", n)
    return head + payload


def take_client_frames(buf):
    """([(opcode, payload)], rest): whole masked client frames at the start of buf."""
    frames = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        assert b1 & 0x80, "a client frame without a mask"
        n, pos = b1 & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, pos = struct.unpack(">H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, pos = struct.unpack(">Q", buf[2:10])[0], 10
        if len(buf) < pos + 4 + n:
            break
        key = buf[pos:pos + 4]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(buf[pos + 4:pos + 4 + n]))
        assert b0 & 0x80, "the client fragmented a small message"
        frames.append((b0 & 0x0F, payload))
        buf = buf[pos + 4 + n:]
    return frames, buf


def echo_reply(opcode, payload):
    """What the echo answers to a client frame: text back prefixed, a Close echoed."""
    if opcode == OP_TEXT:
        return server_frame(OP_TEXT, b"echo:" + payload)
    if opcode == OP_CLOSE:
        return server_frame(OP_CLOSE, payload[:2])
    return b""


def split_frames(data):
    """HTTP/2 frames [(type, flags, bytes)] of whole frames (what python3-h2 hands out)."""
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 3], "big")
        out.append((data[pos + 3], data[pos + 4], data[pos:pos + 9 + n]))
        pos += 9 + n
    assert pos == len(data)
    return out


# ---- an HTTP/2 WebSocket echo server (python3-h2) -----------------------------------------------

class H2WebSocketServer:
    """One connection at a time. bytewise: every byte we write goes in its own send() (TCP_NODELAY,
    a pause between them) so the client reads the handshake a byte at a time. ack_settings=False
    drops our SETTINGS ACKs. ping_plan: [(delay_s, count)], PING bursts sent once the WebSocket
    is open; acks counts the PING ACKs that came back with the opaque data we sent."""

    def __init__(self, bytewise=False, ack_settings=True, ping_plan=()):
        self.bytewise, self.ack_settings, self.ping_plan = bytewise, ack_settings, list(ping_plan)
        self.pings_sent, self.acks, self.errors = 0, 0, []
        self.terminated = None  # the client's GOAWAY error code
        self.opened = threading.Event()
        self.pings_done = threading.Event()
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        try:
            sock, _ = self.lsock.accept()
        except OSError:
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._serve(sock)
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.errors.append(repr(e))
        finally:
            sock.close()
            self.closed.set()

    def _write(self, sock, conn):
        data = conn.data_to_send()
        if not self.ack_settings:
            data = b"".join(f for t, fl, f in split_frames(data)
                            if not (t == SETTINGS_FRAME and fl & ACK))
        if not self.bytewise:
            sock.sendall(data)
            return
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
            time.sleep(0.002)

    def _pinger(self, sock, conn):
        for delay, count in self.ping_plan:
            time.sleep(delay)
            with self.lock:
                for _ in range(count):
                    conn.ping(struct.pack(">Q", self.pings_sent))
                    self.pings_sent += 1
                self._write(sock, conn)

    def _serve(self, sock):
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.local_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        with self.lock:
            conn.initiate_connection()
            self._write(sock, conn)
        pending, sid = b"", None
        while True:
            data = sock.recv(65536)
            if not data:
                return
            with self.lock:
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        head = dict(ev.headers)
                        assert head[":method"] == "CONNECT" and head[":protocol"] == "websocket", head
                        sid = ev.stream_id
                        conn.send_headers(sid, [(":status", "200")])
                        self.opened.set()
                        if self.ping_plan:
                            threading.Thread(target=self._pinger, args=(sock, conn),
                                             daemon=True).start()
                    elif isinstance(ev, h2.events.DataReceived):
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        frames, pending = take_client_frames(pending + ev.data)
                        for opcode, payload in frames:
                            conn.send_data(sid, echo_reply(opcode, payload),
                                           end_stream=opcode == OP_CLOSE)
                    elif isinstance(ev, h2.events.PingAckReceived):
                        if struct.unpack(">Q", ev.ping_data)[0] < self.pings_sent:
                            self.acks += 1
                        if self.acks == sum(n for _, n in self.ping_plan):
                            self.pings_done.set()
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        self.terminated = ev.error_code
                self._write(sock, conn)
            if self.terminated is not None:
                return

    def close(self):
        self.lsock.close()


# ---- an HTTP/1.1 WebSocket echo server by hand --------------------------------------------------

class H1WebSocketServer:
    """One connection: reads the Upgrade request, answers 101 (checked Sec-WebSocket-Accept), greets
    with a text frame and echoes. delivery "bytes": each byte of the answer and of every frame in
    its own send(); "together": the 101 head and the greeting in one send()."""

    def __init__(self, delivery):
        self.delivery, self.errors, self.request = delivery, [], b""
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _send(self, sock, data):
        if self.delivery != "bytes":
            sock.sendall(data)
            return
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
            time.sleep(0.002)

    def _serve(self):
        try:
            sock, _ = self.lsock.accept()
        except OSError:
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(30)
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(4096)
                assert chunk, "the client closed before its request was complete"
                buf += chunk
            self.request, buf = buf.split(b"\r\n\r\n", 1)
            fields = {k.strip().lower(): v.strip() for k, v in
                      (line.split(b":", 1) for line in self.request.split(b"\r\n")[1:])}
            accept = base64.b64encode(hashlib.sha1(fields[b"sec-websocket-key"] +
                                                   WS_GUID.encode()).digest())
            head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            self._send(sock, head + server_frame(OP_TEXT, b"hello from the server"))
            while True:
                frames, buf = take_client_frames(buf)
                for opcode, payload in frames:
                    self._send(sock, echo_reply(opcode, payload))
                    if opcode == OP_CLOSE:
                        return
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.errors.append(repr(e))
        finally:
            sock.close()

    def close(self):
        self.lsock.close()


# ---- `rill ws` ----------------------------------------------------------------------------------

class RillWs:
    """`rill ws -v URL` with stdin held open: send() a line, reply() the next line it printed."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([RILL_BIN, "ws", "-v", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode().rstrip("\n"))
        self.lines.put(None)

    def send(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def reply(self, timeout=20):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no reply within {timeout} s") from None

    def end(self, timeout=20):
        """Closes stdin (the client closes with 1000); (exit code, stderr)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        return self.wait(timeout)

    def wait(self, timeout):
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"rill ws still running after {timeout} s") from None
        return code, self.proc.stderr.read().decode()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---- tests --------------------------------------------------------------------------------------

def test_pings_spread_over_time_keep_the_connection():
    """1,010 PINGs over 95 s within the engine's default PING budget (a burst of 100, 10 a
    second): 60 at once, then 25 every 2.5 s. Every one is acknowledged and the WebSocket still
    echoes. A client whose engine never sees time pass treats the 101st as a flood (GOAWAY
    ENHANCE_YOUR_CALM): the buckets must refill on the connection's clock. The budget allows no
    faster pace. The ASan run sets RILL_WS_PING_BURSTS=10 (310 PINGs over 25 s)."""
    bursts = int(os.environ.get("RILL_WS_PING_BURSTS", "38"))
    plan = [(0.0, 60)] + [(2.5, 25)] * bursts
    total = sum(n for _, n in plan)
    server = H2WebSocketServer(ping_plan=plan)
    client = RillWs(f"ws://127.0.0.1:{server.port}/echo")
    try:
        client.send("before")
        assert client.reply() == "echo:before"
        assert server.pings_done.wait(2.5 * bursts + 60), \
            f"{server.acks} of {server.pings_sent} PINGs acknowledged; GOAWAY {server.terminated}"
        assert server.acks == total and server.terminated is None
        client.send("after")
        assert client.reply() == "echo:after"
        code, err = client.end()
        assert code == 0, err
        assert "an HTTP/2 stream" in err and "closed (1000)" in err
        assert not server.errors, server.errors
    finally:
        client.kill()
        server.close()


def test_a_real_ping_flood_still_ends_the_connection():
    """The other side of the same budget: 150 PINGs at once are a flood, and the client says so."""
    server = H2WebSocketServer(ping_plan=[(0.0, 150)])
    client = RillWs(f"ws://127.0.0.1:{server.port}/echo")
    try:
        code, err = client.wait(30)
        assert server.opened.is_set()
        assert code == 1
        assert "ENHANCE_YOUR_CALM" in err, err
        assert server.closed.wait(10)
        assert server.terminated == ENHANCE_YOUR_CALM
    finally:
        client.kill()
        server.close()


def test_settings_never_acknowledged_ends_the_connection():
    """The server answers everything but never ACKs our SETTINGS: the engine's SETTINGS timeout
    (10 s by default) fires on the connection's timer, GOAWAY SETTINGS_TIMEOUT goes out and `rill
    ws` exits 1 with one line saying why, although the WebSocket was working."""
    server = H2WebSocketServer(ack_settings=False)
    client = RillWs(f"ws://127.0.0.1:{server.port}/echo")
    try:
        started = time.monotonic()
        client.send("hello")
        assert client.reply() == "echo:hello"
        code, err = client.wait(60)
        waited = time.monotonic() - started
        assert code == 1
        assert "did not acknowledge our HTTP/2 SETTINGS" in err and "SETTINGS_TIMEOUT" in err, err
        assert waited >= 9, f"closed after {waited:.1f} s, before the 10 s timeout"
        assert server.closed.wait(10)
        assert server.terminated == SETTINGS_TIMEOUT
    finally:
        client.kill()
        server.close()


def test_h2_handshake_a_byte_per_write():
    """SETTINGS, the 200 HEADERS and every DATA frame reach the client one byte per read."""
    server = H2WebSocketServer(bytewise=True)
    client = RillWs(f"ws://127.0.0.1:{server.port}/echo")
    try:
        client.send("one")
        assert client.reply(60) == "echo:one"
        client.send("two")
        assert client.reply(60) == "echo:two"
        code, err = client.end(60)
        assert code == 0, err
        assert "an HTTP/2 stream" in err and "closed (1000)" in err
        assert not server.errors, server.errors
    finally:
        client.kill()
        server.close()


def run_h1(delivery, host="127.0.0.1"):
    server = H1WebSocketServer(delivery)
    client = RillWs("--http1.1", f"ws://{host}:{server.port}/echo")
    try:
        assert client.reply(60) == "hello from the server"
        client.send("one")
        assert client.reply(60) == "echo:one"
        code, err = client.end(60)
        assert code == 0, err
        assert "over HTTP/1.1" in err and "closed (1000)" in err
        assert not server.errors, server.errors
        assert server.request.startswith(b"GET /echo HTTP/1.1\r\n")
    finally:
        client.kill()
        server.close()


def test_h1_101_a_byte_per_write():
    run_h1("bytes")


def test_h1_101_and_the_first_frame_in_one_write():
    run_h1("together")


def test_a_name_resolves_without_blocking():
    """localhost goes through the resolver (c-ares), not a literal address."""
    run_h1("together", host="localhost")
