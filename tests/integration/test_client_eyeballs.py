"""Happy Eyeballs (RFC 8305) in `rill get` and in the proxy's backend connections, with real
sockets: `localhost` resolves to ::1 and 127.0.0.1 (the client's own answer for it); [::1]:port is
made silent by a listener whose accept queue is full (the kernel drops further SYNs, so connect()
hangs as on a path that loses packets), while 127.0.0.1:port serves. Without racing, the IPv6
attempt would hold the connection until its timeout; with it, IPv4 joins after the attempt delay
and wins."""
import errno
import http.server
import os
import re
import select
import socket
import subprocess
import threading
import time

import pytest

from conftest import RILL_BIN, free_port, run_rill
from server_fixtures import curl, start_server


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "6")
        self.send_header("connection", "close")  # a new backend connection for each request
        self.end_headers()
        self.wfile.write(b"hello\n")

    def log_message(self, *args):
        pass


class Blackhole:
    """[::1]:port where connect() gets no answer: backlog 0 holds one connection (ours, never
    accepted), and the kernel drops every SYN after it."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.bind(("::1", port))
        self.sock.listen(0)
        self.filler = socket.create_connection(("::1", port), timeout=5)
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.setblocking(False)
        assert probe.connect_ex(("::1", port)) == errno.EINPROGRESS
        silent = not select.select([], [probe], [], 0.3)[1]
        probe.close()
        assert silent, "a full accept queue on ::1 does not drop SYNs here"

    def close(self):
        self.filler.close()
        self.sock.close()


@pytest.fixture
def split_localhost():
    """(port, hits): an HTTP server on 127.0.0.1:port and a silent [::1]:port."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    for _ in range(20):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        port = srv.server_address[1]
        try:
            hole = Blackhole(port)
            break
        except OSError as e:
            srv.server_close()
            if e.errno == errno.EADDRNOTAVAIL:
                pytest.skip("no IPv6 loopback here")
    else:
        pytest.skip("no port free on both 127.0.0.1 and ::1")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield port
    srv.shutdown()
    srv.server_close()
    hole.close()


def get(*args):
    return run_rill("get", *args, timeout=60)


def test_get_silent_ipv6_gives_way_to_ipv4(split_localhost):
    port = split_localhost
    url = f"http://localhost:{port}/"
    # --max-time 5 is far below --connect-timeout 30: one address after the other would time out
    r = get("-v", "--max-time", "5", "--connect-timeout", "30", url)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert r.stdout == b"hello\n"
    assert err.index(f"trying [::1]:{port}") < err.index(f"trying 127.0.0.1:{port}")
    assert f"127.0.0.1:{port} answered first; 1 other attempt closed" in err
    assert "cannot connect" not in err  # the IPv6 attempt was still under way: closed, not failed


def test_get_without_racing_waits_for_the_silent_address(split_localhost):
    """--happy-eyeballs-timeout-ms 0: one attempt at a time, so the silent IPv6 attempt holds the
    request until --max-time (exit 28) and IPv4 is never tried."""
    port = split_localhost
    r = get("-v", "--happy-eyeballs-timeout-ms", "0", "--max-time", "1.5", "--connect-timeout",
            "30", f"http://localhost:{port}/")
    err = r.stderr.decode()
    assert r.returncode == 28, err
    assert f"trying 127.0.0.1:{port}" not in err


def test_get_tls_handshake_runs_on_the_winner_only(tmp_path):
    """https: the race is decided by the TCP connect (as curl does); the handshake then runs on
    the IPv4 connection alone, ALPN h2."""
    s = start_server(str(tmp_path), tls=True, threads=1)
    try:
        try:
            hole = Blackhole(s.tls_port)
        except OSError:
            pytest.skip("no IPv6 loopback here, or the port is taken on ::1")
        try:
            r = get("-v", "-k", "--max-time", "5", "--connect-timeout", "30", s.url("/", tls=True))
        finally:
            hole.close()
        err = r.stderr.decode()
        assert r.returncode == 0, err
        assert f"127.0.0.1:{s.tls_port} answered first; 1 other attempt closed" in err
        assert re.search(r"connected to localhost:\d+ over h2 \(TLS", err), err
    finally:
        assert s.stop() == 0, s.stderr()


@pytest.mark.parametrize("value", ["-1", "x", "600001", ""])
def test_get_bad_attempt_delay_exits_2(value):
    r = get("--happy-eyeballs-timeout-ms", value, "http://localhost:1/")
    assert r.returncode == 2, r
    assert b"--happy-eyeballs-timeout-ms" in r.stderr.splitlines()[0]


STAT = re.compile(r"^stat: GET (\S+) status=200 proto=http/1.1 bytes=6 start=([\d.]+) "
                  r"dns=([\d.]+) connect=([\d.]+) first=([\d.]+) end=([\d.]+)$")


def test_stat_connect_is_the_winning_attempt(split_localhost):
    port = split_localhost
    r = get("--stat", "--max-time", "5", "--connect-timeout", "30", "-o", os.devnull,
            f"http://localhost:{port}/")
    assert r.returncode == 0, r.stderr
    m = STAT.match(r.stderr.decode().strip())
    assert m, r.stderr
    start, dns, conn, first, end = map(float, m.groups()[1:])
    assert start <= dns <= conn <= first <= end


def test_get_every_address_refused_is_one_line(refused_port):
    port = refused_port  # nothing on 127.0.0.1:port, nor on [::1]:port
    r = get(f"http://localhost:{port}/x")
    assert r.returncode == 7, r
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert f"cannot connect to localhost:{port}: " in lines[0] and "refused" in lines[0].lower()


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_proxy_backend_over_a_silent_ipv6_address(split_localhost, tmp_path):
    """Each backend connection (the backend says close) races [::1] and 127.0.0.1: every request
    gets its answer, and the proxy ends up with no more descriptors than before (the losing
    attempts were closed)."""
    port = split_localhost
    s = start_server(str(tmp_path), tls=False, extra=["--proxy", f"/=http://localhost:{port}"],
                     threads=1)
    try:
        before = fd_count(s.proc.pid)
        for _ in range(4):
            r = curl(s.url("/x"), timeout=10)  # --max-time 5: below the connect timeout
            assert r.stdout == b"hello\n", r
        # the backend's closes reach the proxy in moments; a leaked attempt would stay until the
        # loop's own connect deadline (10 s)
        deadline = time.monotonic() + 2
        while fd_count(s.proc.pid) > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fd_count(s.proc.pid) <= before
    finally:
        assert s.stop() == 0, s.stderr()


# ---- the WebSocket client's own connection (`rill ws`) ------------------------------------------
# `rill ws --http1.1` takes the Upgrade on a connection of the WebSocket's own (ws_client.c), which
# races the addresses with client_race.c as the request client's connections do. The server is
# python3-websockets, an echo that records each peer's address.

class WsEcho:
    """A python3-websockets echo on the given (host, port) listeners; peers: the remote address of
    each WebSocket it accepted."""

    def __init__(self, hosts, port=0):
        import asyncio
        import websockets
        self.peers = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        failed = []

        async def echo(ws, path=None):
            self.peers.append(ws.remote_address[0])
            async for msg in ws:
                await ws.send(msg)

        async def main():
            try:
                self.server = await websockets.serve(echo, hosts, port)
            except OSError as e:
                failed.append(e)
            ready.set()

        def run():
            self.loop.run_until_complete(main())
            if not failed:
                self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        if failed:
            raise failed[0]
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self):
        async def stop():
            self.server.close()
            await self.server.wait_closed()
        import asyncio
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def ws_split_localhost():
    """(port, echo): a WebSocket echo on 127.0.0.1:port and a silent [::1]:port."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    for _ in range(20):
        echo = WsEcho("127.0.0.1")
        try:
            hole = Blackhole(echo.port)
            break
        except OSError as e:
            echo.close()
            if e.errno == errno.EADDRNOTAVAIL:
                pytest.skip("no IPv6 loopback here")
    else:
        pytest.skip("no port free on both 127.0.0.1 and ::1")
    yield echo.port, echo
    echo.close()
    hole.close()


def ws(*args, timeout=20):
    """`rill ws -v ARGS`: sends "hello", waits for a line back (or the end), then ends its input
    (which closes the WebSocket): (exit code, stdout, stderr)."""
    p = subprocess.Popen([RILL_BIN, "ws", "-v", *args], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"hello\n")
        p.stdin.flush()
    except BrokenPipeError:
        pass
    got = []
    reader = threading.Thread(target=lambda: got.append(p.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass
    try:
        code = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError(f"rill ws still running after {timeout} s") from None
    return code, (got[0] if got else b"") + p.stdout.read(), p.stderr.read().decode()


def test_ws_silent_ipv6_gives_way_to_ipv4(ws_split_localhost):
    """The WebSocket's connection races: IPv6 first, IPv4 beside it after the attempt delay, and
    the IPv4 connect wins while the IPv6 attempt is still under way (one attempt after the other
    would have waited for the IPv6 one's 10 s timeout)."""
    port, echo = ws_split_localhost
    code, out, err = ws("--http1.1", f"ws://localhost:{port}/")
    assert code == 0, err
    assert out == b"hello\n"
    assert err.index(f"trying [::1]:{port}") < err.index(f"trying 127.0.0.1:{port}")
    assert f"127.0.0.1:{port} answered first; 1 other attempt closed" in err
    assert "cannot connect" not in err  # the IPv6 attempt was closed, not failed
    assert "connected over HTTP/1.1" in err
    assert echo.peers == ["127.0.0.1"]


def test_ws_without_racing_waits_for_the_silent_address(ws_split_localhost):
    """--happy-eyeballs-timeout-ms 0: one attempt at a time, so IPv4 is not tried while the silent
    IPv6 attempt is under way (the WebSocket is stopped after 1.5 s, long before the 10 s connect
    timeout)."""
    port, echo = ws_split_localhost
    p = subprocess.Popen([RILL_BIN, "ws", "-v", "--http1.1", "--happy-eyeballs-timeout-ms", "0",
                          f"ws://localhost:{port}/"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(1.5)
    finally:
        p.kill()
        _, err = p.communicate(timeout=10)
    err = err.decode()
    assert f"trying [::1]:{port}" in err, err
    assert f"trying 127.0.0.1:{port}" not in err, err
    assert echo.peers == []


def test_ws_ipv6_wins_when_it_answers():
    """An echo on both ::1 and 127.0.0.1: the IPv6 attempt answers first and IPv4 is never tried."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        echo = WsEcho(["::1", "127.0.0.1"], free_port())
    except OSError:
        pytest.skip("no IPv6 loopback here, or the port is taken on one of them")
    try:
        code, out, err = ws("--http1.1", f"ws://localhost:{echo.port}/")
    finally:
        echo.close()
    assert code == 0, err
    assert out == b"hello\n"
    assert f"trying [::1]:{echo.port}" in err
    assert f"trying 127.0.0.1:{echo.port}" not in err
    assert echo.peers == ["::1"]


def test_ws_refused_ipv6_gives_way_at_once_without_racing():
    """--happy-eyeballs-timeout-ms 0 still moves on after a failure: ::1 refuses (nothing listens
    there), 127.0.0.1 answers."""
    echo = WsEcho("127.0.0.1")
    try:
        code, out, err = ws("--http1.1", "--happy-eyeballs-timeout-ms", "0",
                            f"ws://localhost:{echo.port}/")
    finally:
        echo.close()
    assert code == 0, err
    assert out == b"hello\n"
    if f"trying [::1]:{echo.port}" in err:  # no IPv6 loopback: its attempt cannot even start
        assert err.index(f"cannot connect to [::1]:{echo.port}") < \
            err.index(f"trying 127.0.0.1:{echo.port}")
    assert "answered first" not in err  # one attempt at a time: none to close
    assert echo.peers == ["127.0.0.1"]


def test_ws_every_address_refused_is_one_line(refused_port):
    port = refused_port  # nothing on 127.0.0.1:port, nor on [::1]:port
    code, out, err = ws("--http1.1", f"ws://localhost:{port}/x")
    assert code == 1, err
    lines = [l for l in err.strip().splitlines() if "trying" not in l and "cannot connect to [" not in l
             and f"cannot connect to 127.0.0.1:{port}" not in l]
    assert len(lines) == 1, err
    assert f"rill ws: cannot connect to localhost:{port}: " in lines[0]
    assert "refused" in lines[0].lower()
    # without -v it is the only line
    p = subprocess.run([RILL_BIN, "ws", "--http1.1", f"ws://localhost:{port}/x"], input=b"",
                       capture_output=True, timeout=30)
    assert p.returncode == 1
    assert len(p.stderr.decode().strip().splitlines()) == 1, p.stderr


def test_ws_h2_fallback_goes_first_to_the_address_that_answered(ws_split_localhost):
    """ws:// without --http1.1: the origin's client (HTTP/2 by prior knowledge) races and wins on
    127.0.0.1; python3-websockets does not speak HTTP/2, so the WebSocket takes the Upgrade on a
    connection of its own, which tries the address that answered first of all and wins at once."""
    port, echo = ws_split_localhost
    code, out, err = ws(f"ws://localhost:{port}/")
    assert code == 0, err
    assert out == b"hello\n"
    own = err[err.index("trying"):]
    assert own.index(f"trying 127.0.0.1:{port}") == 0, err
    assert f"trying [::1]:{port}" not in own
    assert echo.peers == ["127.0.0.1"]


@pytest.mark.parametrize("value", ["-1", "x", "600001", ""])
def test_ws_bad_attempt_delay_exits_2(value):
    code, _, err = ws("--happy-eyeballs-timeout-ms", value, "ws://localhost:1/")
    assert code == 2, err
    assert "--happy-eyeballs-timeout-ms" in err.splitlines()[0]
