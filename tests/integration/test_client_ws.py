"""WebSockets on a rill_client (rill_client_websocket), through tests/tools/client_ws.c (a GET, the
WebSocket, a GET while it is open, the close), against `rill serve` (/ws/echo over RFC 8441 on
h2c and h2, the RFC 6455 Upgrade on HTTP/1.1). Between them a relay of this file counts the TCP
connections really made: over HTTP/2 the WebSocket is a stream of the client's one connection,
beside its requests, as in a browser; otherwise it has a connection of its own."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading

import pytest

from conftest import RILL_BIN, free_port, wait_for_port

BUILD = os.environ.get("RILL_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
TOOLS = os.environ.get("RILL_TOOLS") or os.path.join(BUILD, "tests")
TOOL = os.path.join(TOOLS, "client_ws")


@pytest.fixture(scope="module")
def rill_ports():
    port, tls_port = free_port(), free_port()
    state = tempfile.mkdtemp(prefix="rill-clientws-")
    proc = subprocess.Popen([RILL_BIN, "serve", "--listen", f"127.0.0.1:{port}", "--tls-listen",
                             f"127.0.0.1:{tls_port}", "--state-dir", state],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_port(port, proc)
    wait_for_port(tls_port, proc)
    yield port, tls_port
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Relay:
    """Forwards each accepted connection to 127.0.0.1:target, both ways, and counts them."""

    def __init__(self, target):
        self.target = target
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            b = socket.create_connection(("127.0.0.1", self.target))
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self.pipe, args=(x, y), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.sock.close()


@pytest.fixture
def relay():
    relays = []

    def make(target):
        r = Relay(target)
        relays.append(r)
        return r

    yield make
    for r in relays:
        r.close()


def run_tool(*args, timeout=30):
    if not os.path.exists(TOOL):
        pytest.skip("tests/tools/client_ws not built")
    r = subprocess.run([TOOL, *args], capture_output=True, timeout=timeout)
    assert r.returncode == 0, (r.returncode, r.stderr.decode(errors="replace"))
    return r.stdout.decode().splitlines()


def gets(out):
    return [ln for ln in out if ln.startswith("get ")]


@pytest.mark.parametrize("mode", ["h2c", "h2"])
def test_websocket_shares_the_clients_http2_connection(rill_ports, relay, mode):
    port, tls_port = rill_ports
    r = relay(port if mode == "h2c" else tls_port)
    origin = f"{'http' if mode == 'h2c' else 'https'}://127.0.0.1:{r.port}"
    flags = ["--h2"] if mode == "h2c" else ["--insecure"]
    out = run_tool(origin, "/ws/echo", "/", *flags, "--msg", "one", "--msg", "x" * 70000)
    assert "open h2" in out
    assert "message one" in out and "message " + "x" * 70000 in out
    assert "close 1000 -" in out
    assert all(" err=0 status=200 conn=1 proto=h2 " in ln for ln in gets(out)) and len(gets(out)) == 2
    assert out[-1] == "connections 1"
    assert r.accepted == 1  # the requests and the WebSocket: one TCP connection


def test_websocket_of_an_http11_origin_has_its_own_connection(rill_ports, relay):
    port, _ = rill_ports
    r = relay(port)
    out = run_tool(f"http://127.0.0.1:{r.port}", "/ws/echo", "/", "--msg", "plain")
    assert "open HTTP/1.1" in out and "message plain" in out and "close 1000 -" in out
    assert all(" proto=http/1.1 " in ln and " err=0 " in ln for ln in gets(out))
    # the client's (a second when the GETs overlapped: the pool), and the WebSocket's own
    conns = int(out[-1].split()[1])
    assert conns in (1, 2) and r.accepted == conns + 1


def test_force_http1_takes_the_upgrade_beside_an_http2_client(rill_ports, relay):
    port, _ = rill_ports
    r = relay(port)
    out = run_tool(f"http://127.0.0.1:{r.port}", "/ws/echo", "/", "--h2", "--http1-ws")
    assert "open HTTP/1.1" in out and "message hi" in out
    assert all(" proto=h2 " in ln for ln in gets(out))
    assert r.accepted == 2


def test_refused_websocket_leaves_the_connection_to_the_requests(rill_ports, relay):
    port, _ = rill_ports
    r = relay(port)
    out = run_tool(f"http://127.0.0.1:{r.port}", "/no/such/socket", "/", "--h2")
    close = [ln for ln in out if ln.startswith("close ")]
    assert len(close) == 1 and re.fullmatch(r"close 1006 the server refused the WebSocket: HTTP [45]\d\d",
                                            close[0]), close  # rill serve says 501
    assert "open h2" not in " ".join(out)
    assert gets(out) and all(" err=0 status=200 conn=1 proto=h2 " in ln for ln in gets(out))
    assert r.accepted == 1


def test_bad_targets_are_refused_at_once(rill_ports):
    port, _ = rill_ports
    if not os.path.exists(TOOL):
        pytest.skip("tests/tools/client_ws not built")
    for target in ("ws://other.example/ws/echo", "wss://127.0.0.1:%d/ws/echo" % port, "ftp://x/"):
        r = subprocess.run([TOOL, f"http://127.0.0.1:{port}", target, "/"], capture_output=True,
                           timeout=10)
        assert r.returncode == 2 and b"not a path or a URL of the client's origin" in r.stderr
