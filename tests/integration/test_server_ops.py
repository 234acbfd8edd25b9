"""Operating the server: the demo site, the access log, graceful shutdown (GOAWAY, in-flight
requests, under h2load), and start-up failures with their exit statuses."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import RILL_BIN, free_port
from server_fixtures import (DATA, ECHO_BIN, END_STREAM, GOAWAY, HEADERS, PING, SMALL,
                             RawH2, cert_path, curl, h1_connect, parse_h2load, read_h1_response,
                             sha256, start_server)

PROTOCOL_LABEL = re.compile(r'came over <span[^>]*>([^<]+)</span>')


# ---- the demo site -----------------------------------------------------------------------------

@pytest.mark.parametrize("flags,tls,label", [
    (["--http1.1"], False, "HTTP/1.1"),
    (["--http2-prior-knowledge"], False, "h2c"),
    (["--http2"], False, "h2c"),  # by Upgrade
    (["--http2"], True, "h2"),
    (["--http1.1"], True, "HTTP/1.1"),
])
def test_demo_page_names_the_protocol(demo_server, flags, tls, label):
    args = list(flags)
    if tls:
        args += ["--cacert", cert_path(os.path.dirname(demo_server.stderr_path)),
                 "--resolve", f"localhost:{demo_server.tls_port}:127.0.0.1"]
    r = curl(*args, demo_server.url("/", tls))
    assert r.returncode == 0, r.stderr
    assert PROTOCOL_LABEL.findall(r.stdout.decode()) == [label]


def test_demo_stats_json(demo_server):
    s, f = h1_connect(demo_server.port)
    with s:  # this connection is open while the stats are taken
        s.sendall(b"GET /api/stats HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body, _ = read_h1_response(f)
    assert status == 200
    assert dict(headers)[b"content-type"].startswith(b"application/json")
    stats = json.loads(body)
    assert set(stats) >= {"connections", "streams", "requests"}
    assert stats["connections"] >= 1 and stats["streams"] >= 1 and stats["requests"] >= 1
    r = curl("--http2-prior-knowledge", demo_server.url("/api/stats"))
    later = json.loads(r.stdout)
    assert later["requests"] > stats["requests"]


# ---- access log --------------------------------------------------------------------------------

COMBINED = re.compile(r'^(\S+) - - \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
                      r'"(\S+) (\S+) (\S+)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$')


def test_access_log_combined_format(static_server):
    curl("--http2-prior-knowledge", "-A", "agent-h2", static_server.url("/small.txt?log=h2"))
    curl("--http1.1", "-e", "http://ref.example/", static_server.url("/small.txt?log=h1"))
    curl("--http1.1", static_server.url("/missing?log=404"))
    deadline = time.monotonic() + 5
    while True:
        with open(static_server.access_log) as f:
            lines = f.read().splitlines()
        mine = [m for m in map(COMBINED.match, lines) if m and "?log=" in m.group(4)]
        if len(mine) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert all(COMBINED.match(line) for line in lines), [l for l in lines if not COMBINED.match(l)]
    by_path = {m.group(4): m.groups() for m in mine}
    assert by_path["/small.txt?log=h2"][:1] == ("127.0.0.1",)
    assert by_path["/small.txt?log=h2"][2:7] == ("GET", "/small.txt?log=h2", "HTTP/2", "200", "5")
    assert by_path["/small.txt?log=h2"][8] == "agent-h2"
    assert by_path["/small.txt?log=h1"][2:7] == ("GET", "/small.txt?log=h1", "HTTP/1.1", "200", "5")
    assert by_path["/small.txt?log=h1"][7] == "http://ref.example/"
    assert by_path["/missing?log=404"][5] == "404"


# ---- graceful shutdown -------------------------------------------------------------------------

def test_sigterm_goaway_lets_in_flight_stream_finish(site, tmp_path):
    """A response held back by the client's window is in flight at SIGTERM: GOAWAY (first with the
    largest id and a PING, then the real last id), the response still completes, no new stream
    is taken after the final GOAWAY, and the server exits 0 once the connection is done."""
    srv = start_server(str(tmp_path), root=site[0], tls=False)
    big = site[1]["big.bin"]
    c = RawH2(srv.port, settings={4: 65535})
    try:
        c.request(1, "/big.bin")
        body = bytearray()
        while len(body) < 65535:  # the whole first window; then the server waits for us
            t, flags, sid, payload = c.read_frame()
            if t == DATA:
                body += payload
        srv.proc.send_signal(signal.SIGTERM)
        goaways, pinged = [], False
        while len(goaways) < 2:
            t, flags, sid, payload = c.read_frame(timeout=5)
            if t == GOAWAY:
                goaways.append(struct.unpack(">II", payload[:8]))
            pinged |= t == PING
        assert goaways[0] == (2**31 - 1, 0)  # NO_ERROR, every stream still welcome
        assert pinged  # (RawH2 answered it: that lets the server send the final GOAWAY)
        assert goaways[1] == (1, 0)
        # a stream opened now is past the last id: never answered
        c.request(3, "/small.txt")
        c.window_update(1, len(big))
        c.window_update(0, len(big))
        ended = False
        while not ended:
            frame = c.read_frame(timeout=10)
            assert frame is not None, f"closed after {len(body)} bytes"
            t, flags, sid, payload = frame
            assert sid != 3 or t not in (HEADERS, DATA)
            if t == DATA and sid == 1:
                body += payload
                ended = bool(flags & END_STREAM)
        assert sha256(bytes(body)) == sha256(big)
        # the server closes the connection, then exits
        while c.read_frame(timeout=10) is not None:
            pass
        assert srv.proc.wait(timeout=10) == 0
    finally:
        c.close()
        srv.kill()


def test_shutdown_deadline_ends_a_stalled_connection(site, tmp_path):
    srv = start_server(str(tmp_path), root=site[0], tls=False, extra=["--shutdown-timeout", "800"])
    c = RawH2(srv.port)
    try:
        c.request(1, "/big.bin")  # never acknowledged: stalls after one window
        while True:
            t, _, _, payload = c.read_frame()
            if t == DATA:
                break
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=10) == 0
        assert time.monotonic() - start < 5
    finally:
        c.close()
        srv.kill()


def test_sigterm_http1_in_flight_response_completes(site, tmp_path):
    srv = start_server(str(tmp_path), root=site[0], tls=False)
    s, f = h1_connect(srv.port, timeout=20)
    idle, idle_f = h1_connect(srv.port)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        assert f.read(12) == b"HTTP/1.1 200"
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        assert idle_f.read() == b""  # an idle keep-alive connection is closed
        rest = f.read()  # the response (head already sent) completes, then the connection closes
        head, _, body = rest.partition(b"\r\n\r\n")
        assert b"content-length: 3000000" in head.lower()
        assert sha256(body) == sha256(site[1]["big.bin"])
        assert srv.proc.wait(timeout=10) == 0
    finally:
        s.close()
        idle.close()
        srv.kill()


@pytest.mark.parametrize("tls,path,least", [(False, "/small.txt", 1000),
                                             (True, "/small.txt", 1000),
                                             (False, "/big.bin", 20)])
def test_graceful_shutdown_under_h2load(site, tmp_path, tls, path, least):
    """SIGTERM in the middle of an h2load run: exit 0; every request h2load got onto the wire
    completed. h2load counts as "started" requests it submitted locally after the GOAWAY; nghttp2
    never sends them (no new streams after GOAWAY) and closes them unanswered: at most one per
    in-flight slot (-c x -m), and the access log shows the server answered each that reached it."""
    log = str(tmp_path / "access.log")
    srv = start_server(str(tmp_path), root=site[0], tls=tls, access_log=log)
    load = subprocess.Popen(["h2load", "-n", "1000000", "-c", "4", "-m", "8",
                             srv.url(path, tls).replace("localhost", "127.0.0.1")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=15) == 0, srv.stderr()
        out, err = load.communicate(timeout=30)
    finally:
        load.kill()
        srv.kill()
    res = parse_h2load(out)
    assert res["succeeded"] > least, out  # it was really under load
    assert res["done"] == res["started"], res
    assert res["2xx"] == res["succeeded"]
    assert res["timeout"] == 0
    unanswered = res["done"] - res["succeeded"]
    assert unanswered <= 4 * 8, res
    with open(log) as f:
        size = len(site[1][path[1:]])
        served = sum(1 for line in f if f'"GET {path} HTTP/2" 200 {size}' in line)
    assert served == res["succeeded"], (served, res)


def test_sighup_reloads_certificate_and_keeps_serving(site, tmp_path):
    srv = start_server(str(tmp_path), root=site[0])
    try:
        cacert = ["--cacert", cert_path(str(tmp_path)),
                  "--resolve", f"localhost:{srv.tls_port}:127.0.0.1"]
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "certificate reloaded" not in srv.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "certificate reloaded" in srv.stderr()
        r = curl("--http2", *cacert, srv.url("/small.txt", tls=True))
        assert r.returncode == 0 and r.stdout == SMALL, r.stderr
        assert srv.proc.poll() is None
    finally:
        assert srv.stop() == 0, srv.stderr()


def test_tls_without_alpn_is_http1(static_server):
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", static_server.tls_port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        assert s.selected_alpn_protocol() is None
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status, _, body, _ = read_h1_response(s.makefile("rb"))
    assert (status, body) == (200, SMALL)


def test_idle_connections_are_closed(site, tmp_path):
    srv = start_server(str(tmp_path), root=site[0], tls=False, extra=["--idle-timeout", "300"])
    try:
        s, f = h1_connect(srv.port)
        with s:
            s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: a\r\n\r\n")
            assert read_h1_response(f)[2] == SMALL
            start = time.monotonic()
            assert f.read() == b""  # closed by the server once idle
            assert 0.2 < time.monotonic() - start < 3
        c = RawH2(srv.port)
        try:
            start = time.monotonic()
            frames = []
            while (frame := c.read_frame(timeout=5)) is not None:
                frames.append(frame)
            goaway = [struct.unpack(">II", p[:8]) for t, _, _, p in frames if t == GOAWAY]
            assert goaway and goaway[-1][1] == 0  # NO_ERROR
            assert 0.2 < time.monotonic() - start < 3
        finally:
            c.close()
    finally:
        assert srv.stop() == 0, srv.stderr()


# ---- start-up failures -------------------------------------------------------------------------

def run(*args, binary=RILL_BIN, timeout=10):
    argv = [binary] + (["serve"] if binary == RILL_BIN else []) + list(args)
    return subprocess.run(argv, capture_output=True, timeout=timeout)


@pytest.mark.parametrize("binary", [RILL_BIN, ECHO_BIN])
def test_port_taken_by_another_program_exits_1(binary, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("--listen", f"127.0.0.1:{port}", "--tls-listen", "none", binary=binary)
    assert r.returncode == 1
    errors = [l for l in r.stderr.decode().splitlines() if "in use" in l]
    assert len(errors) == 1 and str(port) in errors[0], r.stderr


@pytest.mark.parametrize("args", [["--tls-listen", "none"],
                                  ["--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem",
                                   "--tls-listen", f"127.0.0.1:{free_port()}"]])
def test_startup_failure_is_exactly_one_line(tmp_path, args):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listen = f"127.0.0.1:{port}" if "none" in args else f"127.0.0.1:{free_port()}"
        r = run("--listen", listen, *args, "--state-dir", str(tmp_path))
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1, r.stderr


def test_tls_port_taken_exits_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("--listen", f"127.0.0.1:{free_port()}", "--tls-listen", f"127.0.0.1:{port}",
                "--state-dir", str(tmp_path))
    assert r.returncode == 1
    assert b"in use" in r.stderr


@pytest.mark.parametrize("args,what", [
    (["--root", "/nonexistent/dir"], b"/nonexistent/dir"),
    (["--cert", "/nonexistent/missing.pem", "--key", "/nonexistent/missing.pem"], b"missing.pem"),
])
def test_unusable_files_exit_1_with_one_line(tmp_path, args, what):
    tls = ["--tls-listen", f"127.0.0.1:{free_port()}" if "--cert" in args else "none"]
    r = run("--listen", f"127.0.0.1:{free_port()}", *tls, *args, "--state-dir", str(tmp_path))
    assert r.returncode == 1, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip() and b"https://" not in l and b"http://" not in l]
    assert len(lines) == 1 and what in lines[0], r.stderr


def test_unreadable_root_exits_1(tmp_path):
    root = tmp_path / "locked"
    root.mkdir(mode=0)
    if os.access(root, os.R_OK):  # root ignores permissions: make it a non-directory instead
        root.rmdir()
        root.write_text("not a directory")
    r = run("--listen", f"127.0.0.1:{free_port()}", "--tls-listen", "none", "--root", str(root))
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("binary", [RILL_BIN, ECHO_BIN])
@pytest.mark.parametrize("args", [["--bogus"], ["--threads", "0"], ["--threads", "many"],
                                  ["--listen"]])
def test_bad_flags_exit_2(binary, args):
    r = run(*args, binary=binary)
    assert r.returncode == 2, r.stderr
    assert r.stderr


def test_echo_example_serves_demo_without_root(tmp_path):
    srv = start_server(str(tmp_path), tls=False, binary=ECHO_BIN)
    try:
        r = curl("--http2-prior-knowledge", srv.url("/"))
        assert PROTOCOL_LABEL.findall(r.stdout.decode()) == ["h2c"]
        r = curl("--http1.1", "--data-binary", "abc", srv.url("/echo"))
        assert r.stdout == b"abc"
    finally:
        assert srv.stop() == 0
