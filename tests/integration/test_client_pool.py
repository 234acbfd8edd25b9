"""The client's pool of keep-alive HTTP/1.1 connections (rill_client, max_connections), through
tests/tools/client_pool.c (N requests at once on one rill_client, in rounds) and `rill get`,
against a raw-socket HTTP/1.1 server of this file that records exactly what it got: every
connection, every request on it, how many connections were open at once. The server holds each
request until as many as the client should run at once are in progress (or 10 s), so concurrency
is seen, not timed. Also: Connection: close and HTTP/1.0 answers (no reuse), a server that closes
idle keep-alive connections (noticed; a request that meets a connection closed under it is sent
again once if idempotent, never a POST), responses cut in pieces across one connection's
successive responses, a cancel closing only its own connection, and Python's http.server."""
import http.server
import os
import random
import re
import select
import socket
import socketserver
import subprocess
import threading
import time

import pytest

from conftest import run_rill

BUILD = os.environ.get("RILL_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
TOOLS = os.environ.get("RILL_TOOLS") or os.path.join(BUILD, "tests")
TOOL = os.path.join(TOOLS, "client_pool")
HOLD_LIMIT = 10.0  # a held request is answered after this long even if the others never came


class PoolServer:
    """HTTP/1.1 on raw sockets, one thread per connection. Paths:
    /n/<x>        200 with body "n=<x>", keep-alive
    /close/<x>    200 "c=<x>" with Connection: close, then closes
    /http10/<x>   an HTTP/1.0 200 without keep-alive, then closes
    /hold/<x>     never answered: held until the client closes the connection (a cancel)
    /x/<x>        as /hold/ the first time x is in hold_once, else as /n/
    /drop/<x>     on a connection that already answered something: closed without a byte (a server
                  that closed an idle keep-alive connection as the request arrived); else as /n/
    /pieces/<x>   a 2 KiB chunked or Content-Length body (by x), the whole response written in
                  random pieces, each a separate send
    Every answer waits until `expect` requests are in progress (or HOLD_LIMIT)."""

    def __init__(self, expect=1, idle_close_ms=None, seed=0, hold_once=()):
        self.expect = expect
        self.hold_once = set(hold_once)
        self.idle_close = idle_close_ms / 1000 if idle_close_ms else None
        self.rng = random.Random(seed)
        self.lock = threading.Condition()
        self.live, self.peak_open = [], 0
        self.in_progress = self.peak_in_progress = 0
        self.connections = []  # per connection: the request lines it carried
        self.hold_closed = 0   # /hold connections the client closed
        self.idle_closed = 0   # connections we closed idle
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.threads = []
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                # Open at once = those whose end (the client's FIN, or our close) the kernel has
                # not seen, asked now: a handler thread may not have noticed its end yet, but the
                # client's FIN came before this connection's SYN.
                self.live = [s for s in self.live if still_open(s)] + [conn]
                self.peak_open = max(self.peak_open, len(self.live))
                log = []
                self.connections.append(log)
            t = threading.Thread(target=self.serve, args=(conn, log), daemon=True)
            self.threads.append(t)
            t.start()

    def read_request(self, conn, buf, first):
        """(request line, body, rest) or None at the end; the idle close applies between requests."""
        while b"\r\n\r\n" not in buf:
            conn.settimeout(self.idle_close if self.idle_close and not first and not buf else None)
            try:
                data = conn.recv(65536)
            except socket.timeout:
                with self.lock:
                    self.idle_closed += 1
                return None
            except OSError:
                return None
            if not data:
                return None
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for ln in lines[1:]:
            name, _, value = ln.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        conn.settimeout(None)
        while len(rest) < length:
            data = conn.recv(65536)
            if not data:
                return None
            rest += data
        return lines[0], rest[:length], rest[length:]

    def wait_turn(self):
        """Holds the answer until `expect` requests are in progress at once."""
        with self.lock:
            self.in_progress += 1
            self.peak_in_progress = max(self.peak_in_progress, self.in_progress)
            self.lock.notify_all()
            self.lock.wait_for(lambda: self.peak_in_progress >= self.expect, timeout=HOLD_LIMIT)

    def done_turn(self):
        with self.lock:
            self.in_progress -= 1

    def serve(self, conn, log):
        buf = b""
        try:
            while True:
                req = self.read_request(conn, buf, not log)
                if req is None:
                    return
                line, body, buf = req
                method, path, _ = line.split(" ", 2)
                with self.lock:
                    log.append(f"{method} {path} {body.decode('latin-1')}".rstrip())
                kind, _, arg = path[1:].partition("/")
                if kind == "x":
                    with self.lock:
                        kind = "hold" if arg in self.hold_once else "n"
                        self.hold_once.discard(arg)
                if kind == "hold":
                    with self.lock:
                        self.in_progress += 1
                        self.peak_in_progress = max(self.peak_in_progress, self.in_progress)
                        self.lock.notify_all()
                    conn.settimeout(HOLD_LIMIT)
                    try:
                        gone = conn.recv(1) == b""
                    except (socket.timeout, OSError) as e:
                        gone = not isinstance(e, socket.timeout)
                    with self.lock:
                        self.in_progress -= 1
                        self.hold_closed += gone
                    return
                if kind == "drop" and len(log) > 1:
                    return  # closed without answering
                self.wait_turn()
                try:
                    if kind == "close":
                        b = f"c={arg}".encode()
                        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                                     % (len(b), b))
                        return
                    if kind == "http10":
                        b = f"h={arg}".encode()
                        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b))
                        return
                    if kind == "pieces":
                        self.send_in_pieces(conn, pieces_response(arg))
                        continue
                    b = f"n={arg}".encode()
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b))
                finally:
                    self.done_turn()
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def send_in_pieces(self, conn, data):
        with self.lock:
            cuts = sorted(self.rng.sample(range(1, len(data)), min(40, len(data) - 1)))
        if len(data) < 200:  # a small response: a byte at a time
            cuts = list(range(1, len(data)))
        for a, b in zip([0] + cuts, cuts + [len(data)]):
            conn.sendall(data[a:b])
            time.sleep(0.001)  # a separate read on the client's side, most of the time

    def close(self):
        self.stopping = True
        self.sock.close()
        for t in self.threads:
            t.join(timeout=HOLD_LIMIT + 5)


def still_open(sock):
    """False once the peer's FIN arrived (POLLRDHUP) or we closed sock. Reads nothing and never
    waits: the socket's handler thread may be reading it at the same time."""
    fd = sock.fileno()
    if fd < 0:
        return False
    p = select.poll()
    p.register(fd, select.POLLRDHUP)
    ended = select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL
    return not any(ev & ended for _, ev in p.poll(0))


def pieces_body(arg):
    return bytes((int(arg) * 7 + i) % 251 for i in range(2048 if int(arg) % 3 else 50))


def pieces_response(arg):
    body = pieces_body(arg)
    if int(arg) % 2:
        out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        for i in range(0, len(body), 700):
            part = body[i:i + 700]
            out += b"%x\r\n%s\r\n" % (len(part), part)
        return out + b"0\r\nx-t: 1\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def pool_server():
    servers = []

    def make(**kw):
        s = PoolServer(**kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


LINE = re.compile(r"^end (\d+) (\d+) err=(-?\d+) status=(\d+) conn=(\d+) proto=(\S+) bytes=(\d+) "
                  r"body=([0-9a-f]*) why=(.*)$")


def run_tool(url, *args, timeout=60):
    if not os.path.exists(TOOL):
        pytest.skip("tests/tools/client_pool not built")
    r = subprocess.run([TOOL, url, *args], capture_output=True, timeout=timeout)
    assert r.returncode == 0, (r.returncode, r.stderr.decode(errors="replace")[-2000:])
    ends, conns = [], None
    for line in r.stdout.decode().splitlines():
        m = LINE.match(line)
        if m:
            rnd, i, err, status, conn, proto, nbytes, body, why = m.groups()
            ends.append({"round": int(rnd), "i": int(i), "err": int(err), "status": int(status),
                         "conn": int(conn), "proto": proto, "bytes": int(nbytes),
                         "body": bytes.fromhex(body), "why": why})
        elif line.startswith("connections "):
            conns = int(line.split()[1])
    return ends, conns


# ---- concurrency and reuse ---------------------------------------------------------------------

@pytest.mark.parametrize("n,max_conns", [(1, 6), (3, 6), (6, 6), (10, 6), (5, 2), (4, 1)])
def test_requests_at_once_on_up_to_max_connections(pool_server, n, max_conns):
    srv = pool_server(expect=min(n, max_conns))
    ends, conns = run_tool(srv.url("/n/{i}"), "--n", str(n), "--max", str(max_conns))
    assert sorted(e["i"] for e in ends) == list(range(n))
    for e in ends:
        assert (e["err"], e["status"], e["proto"]) == (0, 200, "http/1.1"), e
        assert e["body"] == f"n={e['i']}".encode()
    # as many at once as allowed, never more
    assert srv.peak_open == min(n, max_conns)
    assert srv.peak_in_progress == min(n, max_conns)
    assert conns == len(srv.connections) == min(n, max_conns)
    assert sorted(ln for log in srv.connections for ln in log) == sorted(f"GET /n/{i}" for i in range(n))


def test_default_max_connections_is_six(pool_server):
    srv = pool_server(expect=6)
    ends, conns = run_tool(srv.url("/n/{i}"), "--n", "20")
    assert len(ends) == 20 and all(e["err"] == 0 for e in ends)
    assert srv.peak_open == 6 and conns == 6


def test_keep_alive_connections_are_reused_round_after_round(pool_server):
    srv = pool_server(expect=3)
    ends, conns = run_tool(srv.url("/n/{i}"), "--n", "8", "--rounds", "5", "--max", "3")
    assert len(ends) == 40 and all(e["err"] == 0 and e["body"] == f"n={e['i']}".encode() for e in ends)
    assert conns == 3 and len(srv.connections) == 3 and srv.peak_open == 3
    assert {e["conn"] for e in ends} == {1, 2, 3}
    assert sum(len(log) for log in srv.connections) == 40


def test_connection_close_and_http10_answers_are_not_reused(pool_server):
    srv = pool_server(expect=2)
    ends, conns = run_tool(srv.url("/close/{i}"), "--n", "6", "--max", "2")
    assert sorted(e["body"] for e in ends) == sorted(f"c={i}".encode() for i in range(6))
    assert all(e["err"] == 0 for e in ends)
    assert conns == len(srv.connections) == 6 and srv.peak_open <= 2
    assert all(len(log) == 1 for log in srv.connections)
    srv2 = pool_server(expect=2)
    ends, conns = run_tool(srv2.url("/http10/{i}"), "--n", "4", "--max", "2")
    assert all(e["err"] == 0 and e["body"] == f"h={e['i']}".encode() for e in ends)
    assert conns == len(srv2.connections) == 4 and all(len(log) == 1 for log in srv2.connections)


def test_python_http_server_keep_alive_pool(tmp_path):
    """Python's http.server (HTTP/1.1, threads): 12 GETs on at most 3 connections, bodies right."""
    for i in range(12):
        (tmp_path / f"f{i}").write_bytes(os.urandom(1000 + i))
    seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def setup(self):
            seen.append(1)
            super().setup()

        def log_message(self, *a):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        ends, conns = run_tool(f"http://127.0.0.1:{srv.server_address[1]}/f{{i}}", "--n", "12",
                               "--max", "3", "--rounds", "2")
    finally:
        srv.shutdown()
        srv.server_close()
    assert len(ends) == 24
    for e in ends:
        data = (tmp_path / f"f{e['i']}").read_bytes()
        assert (e["err"], e["status"], e["bytes"]) == (0, 200, len(data)) and data.startswith(e["body"])
    assert 1 <= conns <= 3 and len(seen) == conns


# ---- idle and stale connections -----------------------------------------------------------------

def test_connections_the_server_closed_while_idle_are_not_used(pool_server):
    """The server closes keep-alive connections idle for 100 ms; the next round comes 600 ms
    later: new connections, no request lost, none sent twice."""
    srv = pool_server(expect=3, idle_close_ms=100)
    ends, conns = run_tool(srv.url("/n/{i}"), "--n", "3", "--rounds", "2", "--gap-ms", "600",
                           "--max", "3")
    assert len(ends) == 6 and all(e["err"] == 0 for e in ends), ends
    assert srv.idle_closed >= 3 and conns == 6
    assert sorted(ln for log in srv.connections for ln in log) == sorted([f"GET /n/{i}" for i in range(3)] * 2)


def test_idle_connections_close_after_idle_timeout(pool_server):
    """The client's idle_timeout_ms (200 ms) closes its keep-alive connections itself before the
    next round (600 ms later): new connections, nothing lost; the server never had to."""
    srv = pool_server(expect=3)
    ends, conns = run_tool(srv.url("/n/{i}"), "--n", "3", "--rounds", "2", "--gap-ms", "600",
                           "--max", "3", "--idle-ms", "200")
    assert len(ends) == 6 and all(e["err"] == 0 for e in ends), ends
    assert conns == 6 and len(srv.connections) == 6 and srv.idle_closed == 0
    assert all(len(log) == 1 for log in srv.connections)
    # the default (30 s) keeps them for the next round
    srv2 = pool_server(expect=3)
    ends, conns = run_tool(srv2.url("/n/{i}"), "--n", "3", "--rounds", "2", "--gap-ms", "600",
                           "--max", "3")
    assert conns == 3 and all(len(log) == 2 for log in srv2.connections)


def test_client_freed_with_requests_in_flight(pool_server):
    """rill_client_free while four requests wait on four connections: they end without on_end,
    every connection closes (the server sees each one go), and nothing leaks (the ASan run)."""
    srv = pool_server(expect=4)
    r = subprocess.run([TOOL, srv.url("/hold/{i}"), "--n", "4", "--max", "4", "--stop-ms", "300"],
                       capture_output=True, timeout=30) if os.path.exists(TOOL) else pytest.skip("no tool")
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    out = r.stdout.decode().splitlines()
    assert out[0] == "stopped" and not any(ln.startswith("end ") for ln in out)
    assert out[-1] == "connections 4"
    deadline = time.monotonic() + 10
    while srv.hold_closed < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.hold_closed == 4


def test_stale_keep_alive_connection_get_is_sent_again_once(pool_server):
    """Round 2's GETs meet connections the server closes without a byte (as if it had closed them
    idle as the requests arrived): each goes again, once, on a new connection."""
    srv = pool_server(expect=2)  # round 0's two requests on two connections
    ends, conns = run_tool(srv.url("/drop/{i}"), "--n", "2", "--rounds", "2", "--max", "2")
    assert len(ends) == 4 and all(e["err"] == 0 and e["body"] == f"n={e['i']}".encode() for e in ends), ends
    # round 1: 2 connections; round 2: each request dropped on one of them, then answered on a new one
    assert conns == 4 and len(srv.connections) == 4
    assert [len(log) for log in srv.connections[:2]] == [2, 2]
    assert [log for log in srv.connections[2:]] in ([["GET /drop/0"], ["GET /drop/1"]],
                                                    [["GET /drop/1"], ["GET /drop/0"]])
    assert {e["conn"] for e in ends if e["round"] == 1} == {3, 4}


def test_stale_keep_alive_connection_post_fails_and_is_not_sent_again(pool_server):
    srv = pool_server(expect=1)
    ends, conns = run_tool(srv.url("/drop/{i}"), "--method", "POST", "--data", "abc", "--rounds",
                           "2", "--max", "1")
    first, second = sorted(ends, key=lambda e: e["round"])
    assert (first["err"], first["body"]) == (0, b"n=0")
    assert second["err"] != 0 and second["status"] == 0
    assert "closed the keep-alive connection" in second["why"] and "not idempotent" in second["why"]
    # the POST went out once per round: never silently sent again
    assert srv.connections == [["POST /drop/0 abc", "POST /drop/0 abc"]] and conns == 1


def test_stale_keep_alive_connection_put_is_sent_again_on_a_fresh_one(pool_server):
    """PUT is idempotent: sent again too, and on a new connection (the server answers a
    connection's first request and drops its second), so each round's PUT goes at most twice."""
    srv = pool_server(expect=1)
    ends, _ = run_tool(srv.url("/drop/{i}"), "--method", "PUT", "--data", "x", "--rounds", "3",
                       "--max", "1")
    assert len(ends) == 3 and all(e["err"] == 0 for e in ends), ends
    tries = [ln for log in srv.connections for ln in log]
    assert len(tries) == 5  # 1 + 2 + 2: rounds 2 and 3 each dropped once, then answered


# ---- pieces, cancel -----------------------------------------------------------------------------

def test_responses_in_pieces_on_reused_connections(pool_server):
    srv = pool_server(expect=3, seed=15)
    ends, conns = run_tool(srv.url("/pieces/{i}"), "--n", "12", "--max", "3", "--rounds", "2")
    assert len(ends) == 24
    for e in ends:
        body = pieces_body(str(e["i"]))
        assert (e["err"], e["status"], e["bytes"]) == (0, 200, len(body)), e
        assert body.startswith(e["body"])
    assert conns == 3 and sum(len(log) for log in srv.connections) == 24


def test_a_paused_response_holds_only_its_connection(pool_server):
    """Request 2 is paused at its head (its connection is not read) and resumed once the other
    five ended: they went on the pool's other connections meanwhile; its 2 KiB body then
    arrives whole. With one connection they would have waited behind it."""
    srv = pool_server(expect=6, seed=3)
    ends, conns = run_tool(srv.url("/pieces/{i}"), "--n", "6", "--max", "6", "--pause", "2")
    order = [e["i"] for e in ends]
    assert order[-1] == 2 and sorted(order) == list(range(6))
    for e in ends:
        body = pieces_body(str(e["i"]))
        assert (e["err"], e["bytes"]) == (0, len(body)) and body.startswith(e["body"]), e
    assert conns == 6


def test_cancel_closes_only_its_connection(pool_server):
    """Request 1 is held by the server and cancelled after 300 ms: its connection closes, the
    others' requests end well, and the next round reuses their three connections."""
    srv2 = pool_server(expect=4, hold_once=["1"])
    ends, conns = run_tool(srv2.url("/x/{i}"), "--n", "4", "--max", "4", "--cancel", "1", "--cancel-ms", "300",
                           "--rounds", "2")
    r0 = [e for e in ends if e["round"] == 0]
    assert len(ends) == 8
    cancelled = [e for e in r0 if e["i"] == 1]
    assert cancelled and cancelled[0]["err"] != 0 and "cancel" in cancelled[0]["why"]
    assert all(e["err"] == 0 for e in ends if not (e["round"] == 0 and e["i"] == 1)), ends
    deadline = time.monotonic() + 10  # the server's thread sees the close in its own time
    while srv2.hold_closed < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv2.hold_closed == 1
    # round 1 goes on the three connections left, and a new one unless one of those was free
    # again before it opened
    survivors = {e["conn"] for e in r0 if e["i"] != 1}
    r1_conns = {e["conn"] for e in ends if e["round"] == 1}
    assert len(survivors) == 3 and survivors <= r1_conns and cancelled[0]["conn"] not in r1_conns
    assert conns in (4, 5) and len(srv2.connections) == conns


# ---- rill get -------------------------------------------------------------------------------------

STAT = re.compile(r"^stat: (\S+) (\S+) status=(\d+) proto=(\S+) bytes=(\d+) start=([\d.]+) "
                  r"dns=([\d.]+|-) connect=([\d.]+|-) first=([\d.]+|-) end=([\d.]+)$")


def stat_rows(stderr):
    rows = [STAT.match(line) for line in stderr.decode().strip().splitlines()]
    assert all(rows), stderr
    return [m.groups() for m in rows]


def test_rill_get_urls_of_one_origin_go_at_once(pool_server):
    """Four URLs of one origin: four connections at once, bodies in URL order, and each --stat
    line carries its own connection's open time (not the origin's last one)."""
    srv = pool_server(expect=4)
    urls = [srv.url(f"/n/{i}") for i in range(4)]
    r = run_rill("get", "--stat", *urls, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"n=0n=1n=2n=3"
    assert srv.peak_open == 4 and len(srv.connections) == 4
    rows = stat_rows(r.stderr)
    assert sorted(row[1] for row in rows) == sorted(urls)
    for method, u, status, proto, nbytes, start, dns, conn, first, end in rows:
        assert (method, status, proto, nbytes) == ("GET", "200", "http/1.1", "3")
        assert conn != "-" and float(start) <= float(conn) <= float(first) <= float(end)
    assert len({row[7] for row in rows}) == 4  # four connections, four open times


def test_rill_get_repeats_share_max_connections(pool_server):
    srv = pool_server(expect=2)
    r = run_rill("get", "--stat", "--max-connections", "2", "-n", "6", srv.url("/n/x"), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"n=x" * 6
    assert srv.peak_open == 2 and len(srv.connections) == 2
    rows = stat_rows(r.stderr)
    assert len(rows) == 6
    # all six were made before the two connections opened: each reports the one it went on
    assert len({row[7] for row in rows}) == 2 and "-" not in {row[7] for row in rows}
    # a second run with one connection: one after another, as before the pool
    srv2 = pool_server(expect=1)
    r = run_rill("get", "--max-connections", "1", "-n", "5", srv2.url("/n/y"), timeout=60)
    assert r.returncode == 0 and r.stdout == b"n=y" * 5
    assert srv2.peak_open == 1 and srv2.connections == [["GET /n/y"] * 5]


def test_rill_get_post_on_a_stale_connection_fails_with_56(pool_server):
    srv = pool_server(expect=1)
    r = run_rill("get", "--max-connections", "1", "-d", "a=1", srv.url("/drop/1"), srv.url("/drop/2"),
                 timeout=60)
    assert r.returncode == 56, r.stderr
    assert r.stdout == b"n=1"
    assert "closed the keep-alive connection" in r.stderr.decode()
    assert srv.connections == [["POST /drop/1 a=1", "POST /drop/2 a=1"]]  # never sent again
    # a GET in its place is sent again on a new connection, and succeeds
    srv2 = pool_server(expect=1)
    r = run_rill("get", "--max-connections", "1", srv2.url("/drop/1"), srv2.url("/drop/2"), timeout=60)
    assert r.returncode == 0 and r.stdout == b"n=1n=2", r.stderr
    assert srv2.connections == [["GET /drop/1", "GET /drop/2"], ["GET /drop/2"]]
