"""HTTP/2 floods against the real server over a socket: each must end (GOAWAY ENHANCE_YOUR_CALM,
then the connection closes) within about 1 MB of the attacker's bytes, while another client on the
same worker thread keeps being served.

The server reads at most a few hundred KB of each flood (its budgets cut at 128 KiB of a header
block or about 30 KB of resets, then a lingering close discards at most 128 KiB); what else the
kernels accept sits in socket buffers that TCP autotuning sizes. On a loaded machine that varies,
so the median over many connections must stay under 1 MB and every single one under 1.5 MB
(before the fixes: 16 to 1000+ MB).

The attacker writes in a loop on a non-blocking socket, and keeps writing after the GOAWAY as an
attacker would, counting the bytes the kernel accepted until the connection ends (EPIPE or
ECONNRESET); the loop is bounded in time and bytes. Its send buffer is fixed at 64 KiB: loopback
autotuning would otherwise let the attacker's own kernel accept 1-3 MB before the server has read
anything, which says nothing about the server. TCP_INFO's bytes_acked (what reached the server's
kernel) is reported beside it.

Run as a script to print the figures: /usr/bin/python3 test_h2_floods.py [PORT]
(without PORT it starts $RILL_BIN, by default build/rill)."""
import errno
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

import hpack
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_fixtures import start_server  # noqa: E402

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SETTINGS_INITIAL_WINDOW_SIZE = 4
ENHANCE_YOUR_CALM = 0xB
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

MEDIAN_LIMIT = 1000 * 1000   # bytes the kernel accepts from a flood connection before it ends
EACH_LIMIT = 1500 * 1000     # ... with autotuned buffers at their worst
ATTACK_SNDBUF = 64 * 1024
TIME_BOUND = 10.0            # one attack connection at most
BYTE_BOUND = 64 << 20


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first=0):
    """RFC 7541 5.1 integer; first holds the bits above the prefix."""
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def request_block(enc, path="/"):
    return enc.encode([(":method", "GET"), (":scheme", "http"), (":authority", "localhost"),
                       (":path", path)])


# ---- the shapes: (settings, endless generator of frames, whether the attacker reads) ----------

def continuation_flood():
    """HEADERS without END_HEADERS, then 16 KB CONTINUATIONs of literal fields, never ending."""
    field = b"\x00" + hpack_int(7, 7) + b"x-flood" + hpack_int(100, 7) + b"a" * 100
    block = (field * (16384 // len(field) + 1))[:16384]
    yield frame(HEADERS, 0, 1, block)
    while True:
        yield frame(CONTINUATION, 0, 1, block)


def bomb_entry():
    return b"\x40" + hpack_int(1, 7) + b"x" + hpack_int(4000, 7) + b"v" * 4000


def hpack_bomb():
    """One 4 KB dynamic-table entry, then CONTINUATIONs of one-byte references to it."""
    entry = bomb_entry()
    yield frame(HEADERS, 0, 1, entry + b"\xbe" * (16384 - len(entry)))
    while True:
        yield frame(CONTINUATION, 0, 1, b"\xbe" * 16384)


def hpack_bomb_blocks():
    """The bomb as complete requests: every block decodes far past the header-list limit."""
    entry = bomb_entry()
    yield frame(HEADERS, END_HEADERS | END_STREAM, 1, entry + b"\xbe" * (16384 - len(entry)))
    sid = 3
    while sid < 1 << 31:
        yield frame(HEADERS, END_HEADERS | END_STREAM, sid, b"\xbe" * 16384)
        sid += 2


def rapid_reset():
    """HEADERS + RST_STREAM pairs (CVE-2023-44487)."""
    enc = hpack.Encoder()
    sid = 1
    while sid < 1 << 31:
        yield frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(enc))
        yield frame(RST_STREAM, 0, sid, struct.pack(">I", 8))  # CANCEL
        sid += 2


def made_you_reset(provoke):
    """HEADERS + a frame that makes the server reset the stream (CVE-2025-8671)."""
    enc = hpack.Encoder()
    sid = 1
    while sid < 1 << 31:
        if provoke == "window_update":  # a zero increment: stream PROTOCOL_ERROR
            yield frame(HEADERS, END_HEADERS, sid, request_block(enc))
            yield frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 0))
        elif provoke == "window_overflow":  # FLOW_CONTROL_ERROR
            yield frame(HEADERS, END_HEADERS, sid, request_block(enc))
            yield frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 0x7FFFFFFF))
        elif provoke == "priority":  # the wrong length: stream FRAME_SIZE_ERROR
            yield frame(HEADERS, END_HEADERS, sid, request_block(enc))
            yield frame(PRIORITY, 0, sid, b"\0\0\0\0")
        else:  # "data": DATA after END_STREAM: stream STREAM_CLOSED
            yield frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(enc))
            yield frame(DATA, 0, sid, b"x")
        sid += 2


NO_WINDOW = {SETTINGS_INITIAL_WINDOW_SIZE: 0}  # our responses cannot finish: streams stay open

SHAPES = {
    "continuation": ({}, continuation_flood, True),
    "hpack_bomb": ({}, hpack_bomb, True),
    "hpack_bomb_blocks": ({}, hpack_bomb_blocks, True),
    "rapid_reset": ({}, rapid_reset, True),
    "made_you_reset_window_update": ({}, lambda: made_you_reset("window_update"), True),
    "made_you_reset_window_overflow": ({}, lambda: made_you_reset("window_overflow"), True),
    "made_you_reset_priority": ({}, lambda: made_you_reset("priority"), True),
    # requests each followed by DATA on the half-closed stream, our RST_STREAMs never read
    "data_on_half_closed_never_reading": (NO_WINDOW, lambda: made_you_reset("data"), False),
}


# ---- the attacker -----------------------------------------------------------------------------

def goaway_code(buf):
    """The error code of the first GOAWAY in a byte stream of frames, or None."""
    i = 0
    while i + 9 <= len(buf):
        length = int.from_bytes(buf[i:i + 3], "big")
        if buf[i + 3] == GOAWAY and i + 17 <= len(buf):
            return int.from_bytes(buf[i + 13:i + 17], "big")
        i += 9 + length
    return None


def attack(port, settings, shape, reads, time_bound=TIME_BOUND, byte_bound=BYTE_BOUND,
           sndbuf=ATTACK_SNDBUF):
    """One flood connection, written on until the connection ends or the bounds pass. Returns
    {sent: bytes the kernel accepted, at_goaway: sent when the GOAWAY was read (None: not read
    during the flood), goaway: its code, end: 'reset' or 'bound', acked: bytes the server's kernel
    acknowledged, seconds}."""
    sock = socket.socket()
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    payload = b"".join(struct.pack(">HI", k, v) for k, v in settings.items())
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0, payload) + frame(SETTINGS, ACK, 0))
    sock.setblocking(False)
    got = bytearray()
    sent, at_goaway, end, eof, acked = 0, None, "bound", False, -1
    pending = bytearray()
    gen = shape()
    start = time.monotonic()
    try:
        while sent < byte_bound and time.monotonic() - start < time_bound:
            r, w, _ = select.select([sock] if reads and not eof else [], [sock], [], 0.2)
            if r:
                try:
                    data = sock.recv(1 << 20)
                except ConnectionResetError:
                    end = "reset"
                    break
                eof = not data
                got += data
                if at_goaway is None and goaway_code(got) is not None:
                    at_goaway = sent
            if w:
                while len(pending) < 65536:
                    pending += next(gen)
                try:
                    n = sock.send(pending)
                except BlockingIOError:
                    continue
                except OSError as e:
                    if e.errno in (errno.EPIPE, errno.ECONNRESET):
                        end = "reset"
                        break
                    raise
                sent += n
                del pending[:n]
        seconds = time.monotonic() - start
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
            acked = struct.unpack_from("<Q", info, 120)[0]  # tcpi_bytes_acked
        except (OSError, struct.error):
            pass
        # What the server said, if not read yet (the non-reading attacker looks only now; Linux
        # still delivers what arrived before the reset).
        sock.setblocking(True)
        sock.settimeout(2)
        try:
            while goaway_code(got) is None:
                data = sock.recv(1 << 20)
                if not data:
                    break
                got += data
        except OSError:
            pass
    finally:
        sock.close()
    return {"sent": sent, "at_goaway": at_goaway, "goaway": goaway_code(got), "end": end,
            "acked": acked, "seconds": round(seconds, 3)}


class Bystander:
    """Another client of the same server: one h2c request after another with curl (every 50 ms);
    counts the answers and keeps the failures."""

    def __init__(self, port):
        self.port, self.ok, self.failed = port, 0, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "5",
                                "-o", "/dev/null", "-w", "%{http_code}",
                                f"http://127.0.0.1:{self.port}/"], capture_output=True)
            if r.stdout == b"200":
                self.ok += 1
            else:
                self.failed.append((r.stdout, r.stderr))
            self.stop.wait(0.05)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=10)
        return self.ok, self.failed


# ---- tests --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flood_server(tmp_path_factory):
    # One worker thread: the bystander's requests share the attacked connections' event loop.
    srv = start_server(str(tmp_path_factory.mktemp("floods")), tls=False, threads=1)
    yield srv
    assert srv.stop() == 0, srv.stderr()


@pytest.mark.parametrize("name", list(SHAPES))
def test_flood_is_cut_off_within_a_megabyte(flood_server, name):
    settings, shape, reads = SHAPES[name]
    bystander = Bystander(flood_server.port)
    results = []
    try:
        # Flood connection after flood connection for a while (bounded), the bystander meanwhile.
        start = time.monotonic()
        while time.monotonic() - start < 1.5 and len(results) < 200:
            results.append(attack(flood_server.port, settings, shape, reads))
        time.sleep(0.2)  # a request after the last cut too
    finally:
        ok, failed = bystander.finish()
    print(f"{name}: {len(results)} connections, first {results[0]}")
    for res in results:
        assert res["end"] == "reset", f"the connection outlived the attack's bounds: {res}"
        assert res["sent"] < EACH_LIMIT, f"{res['sent']} bytes accepted before the cut: {res}"
        assert res["goaway"] == ENHANCE_YOUR_CALM, res
    median = statistics.median(res["sent"] for res in results)
    assert median < MEDIAN_LIMIT, f"median {median} bytes accepted before the cut"
    assert not failed, f"bystander: {ok} answered, failures {failed[:3]}"
    assert ok >= 3, f"bystander: only {ok} answered"
    assert flood_server.proc.poll() is None


def test_flood_with_the_attackers_own_buffers(flood_server):
    """Without a fixed send buffer the attacker's kernel accepts more on its own; the server's
    kernel still acknowledges under the limit, and the connection still ends."""
    res = attack(flood_server.port, {}, continuation_flood, True, sndbuf=0)
    print(res)
    assert res["end"] == "reset" and res["goaway"] == ENHANCE_YOUR_CALM, res
    assert 0 < res["acked"] < EACH_LIMIT, res


def main():
    if len(sys.argv) > 1:
        port, srv = int(sys.argv[1]), None
    else:
        srv = start_server(tempfile.mkdtemp(), tls=False, threads=1)
        port = srv.port
    sndbuf = int(os.environ.get("SNDBUF", ATTACK_SNDBUF))
    try:
        for name, (settings, shape, reads) in SHAPES.items():
            res = attack(port, settings, shape, reads, sndbuf=sndbuf)
            g, code = res["at_goaway"], res["goaway"]
            print(f"{name:34s} sent {res['sent'] / 1e6:9.3f} MB  acked {res['acked'] / 1e6:8.3f} MB  "
                  f"(at GOAWAY {'-' if g is None else f'{g / 1e6:.3f}'})  end {res['end']:6s} "
                  f"goaway {code if code is None else hex(code)}  {res['seconds']:.2f} s", flush=True)
    finally:
        if srv:
            srv.stop()


if __name__ == "__main__":
    main()
