"""The core API (Node http2 shape): sessions before their streams, rill_server_stream_respond, and the
session events and methods (on_close, on_goaway, on_remote_settings, rill_server_session_close,
rill_server_session_destroy), through tests/tools/session_events_server.c against raw HTTP/2 frames,
python-h2 and curl."""
import os
import socket
import struct
import subprocess
import time

import h2.connection
import h2.events
import pytest

from conftest import free_port, wait_for_port
from server_fixtures import (DATA, END_STREAM, GOAWAY, HEADERS, PING, RawH2, curl, h1_connect,
                             read_h1_response)

TOOL = os.path.join(os.environ.get("RILL_TOOLS", ""), "session_events_server")
ENHANCE_YOUR_CALM = 0xB


class EventServer:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.out_path = tmp_path / f"events-{self.port}.txt"
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen([TOOL, "--listen", f"127.0.0.1:{self.port}"],
                                     stdout=self.out, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.proc)

    def lines(self):
        return self.out_path.read_text().splitlines()

    def wait_for(self, prefix, timeout=5):
        """The event lines once one starting with prefix has appeared."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if any(line.startswith(prefix) for line in lines):
                return lines
            time.sleep(0.02)
        raise AssertionError(f"no {prefix!r} event; got {self.lines()}")

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(timeout=10) == 0
        self.out.close()


@pytest.fixture
def server(tmp_path):
    if not os.path.exists(TOOL):
        pytest.fail(f"{TOOL} is not built")
    s = EventServer(tmp_path)
    yield s
    s.stop()


def frames_until_closed(client, timeout=5):
    got = []
    while True:
        f = client.read_frame(timeout=timeout)
        if f is None:
            return got
        got.append(f)


def test_session_comes_before_its_streams_and_settings_are_reported(server):
    # prior knowledge: the preface, SETTINGS and the request arrive in one write
    c = RawH2(server.port, settings={0x4: 12345, 0x5: 32768})
    c.request(1, "/core")
    headers = None
    while headers is None:
        ftype, flags, stream, payload = c.read_frame()
        if ftype == HEADERS and stream == 1:
            headers = dict(payload)
    assert headers[":status"] == "200" and headers["x-stream"] == "1"
    sid = headers["x-session"]
    lines = server.wait_for(f"done {sid} 1 1")
    assert lines[0] == f"session {sid} 2"  # h2c, announced before anything else of it
    assert lines.index(f"settings {sid} 12345 32768") < lines.index(f"stream {sid} 1 /core")
    assert f"close {sid}" not in lines
    c.send(GOAWAY, 0, 0, struct.pack(">II", 0, 0))
    server.wait_for(f"goaway {sid} 0 0")
    c.close()
    server.wait_for(f"close {sid}")


def test_python_h2_client_goaway_with_error_code(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"),
                          (":path", "/core")], end_stream=True)
    sock.sendall(conn.data_to_send())
    ended = False
    while not ended:
        for event in conn.receive_data(sock.recv(65536)):
            if isinstance(event, h2.events.StreamEnded):
                ended = True
        sock.sendall(conn.data_to_send())
    conn.close_connection(error_code=ENHANCE_YOUR_CALM, last_stream_id=0)
    sock.sendall(conn.data_to_send())
    lines = server.wait_for("goaway ")
    sid = lines[0].split()[1]
    assert f"goaway {sid} {ENHANCE_YOUR_CALM} 0" in lines
    sock.close()
    server.wait_for(f"close {sid}")


def test_session_close_is_graceful_over_h2(server):
    c = RawH2(server.port)
    c.request(1, "/hold")
    c.request(3, "/close")
    frames = frames_until_closed(c)  # the server ends the connection itself
    goaways = [i for i, f in enumerate(frames) if f[0] == GOAWAY]
    assert goaways, frames
    codes = {struct.unpack(">I", frames[i][3][4:8])[0] for i in goaways}
    assert codes == {0}  # NO_ERROR: a graceful goodbye
    last_ids = [struct.unpack(">I", frames[i][3][:4])[0] & 0x7FFFFFFF for i in goaways]
    assert last_ids[-1] == 3  # both requests were taken
    body = {1: b"", 3: b""}
    ended = set()
    for ftype, flags, stream, payload in frames:
        if ftype == DATA:
            body[stream] += payload
        if ftype in (DATA, HEADERS) and flags & END_STREAM:
            ended.add(stream)
    assert body == {1: b"held\n", 3: b"bye\n"} and ended == {1, 3}
    # the held stream finished after the GOAWAY: in flight, not cut
    held_end = max(i for i, f in enumerate(frames) if f[0] == DATA and f[2] == 1)
    assert goaways[0] < held_end
    lines = server.wait_for("close ")
    sid = lines[0].split()[1]
    assert f"done {sid} 1 1" in lines and f"done {sid} 3 1" in lines


def test_session_destroy_sends_goaway_code_and_cuts_streams(server):
    c = RawH2(server.port)
    c.request(1, "/hold")
    c.request(3, "/destroy")
    frames = frames_until_closed(c)
    goaway = [f for f in frames if f[0] == GOAWAY]
    assert goaway and struct.unpack(">I", goaway[-1][3][4:8])[0] == ENHANCE_YOUR_CALM
    assert not any(f[0] == DATA and f[2] == 1 for f in frames)  # the held body never came
    lines = server.wait_for("close ")
    sid = lines[0].split()[1]
    assert f"done {sid} 1 0" in lines and f"done {sid} 3 0" in lines
    assert lines.index(f"done {sid} 1 0") < lines.index(f"close {sid}")  # streams first


def test_http1_sessions_streams_and_close(server):
    sock, f = h1_connect(server.port)
    sock.sendall(b"GET /core HTTP/1.1\r\nHost: x\r\n\r\n")
    status, fields, body, _ = read_h1_response(f)
    fields = {n.decode().lower(): v.decode() for n, v in fields}
    assert status == 200 and fields["x-stream"] == "1"
    sid = fields["x-session"]
    sock.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive asked for, close wins
    status, fields, body, _ = read_h1_response(f)
    fields = {n.decode().lower(): v.decode() for n, v in fields}
    assert status == 200 and body == b"bye\n"
    assert fields.get("connection", "").lower() == "close"
    assert f.read() == b""  # the server closed the connection
    sock.close()
    lines = server.wait_for(f"close {sid}")
    assert lines[0] == f"session {sid} 1"
    assert not any(line.startswith("settings ") for line in lines)


def test_unclaimed_streams_go_to_the_routes(server):
    out = curl("-o", "-", "-w", " %{http_code} %{http_version}", "--http2-prior-knowledge",
               f"http://127.0.0.1:{server.port}/elsewhere").stdout
    assert out == b"not here\n 404 2"
