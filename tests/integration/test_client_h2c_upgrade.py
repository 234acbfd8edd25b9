"""The client's h2c Upgrade (`rill get --http2 http://...`, rill_client_options.h2c_upgrade):
the first request without a body offers it; a server that agrees (rill serve, h2o, a python3-h2
server that sends its 101 and frames in pieces) answers it as HTTP/2 stream 1 and the connection
carries the next requests as streams; one that declines (Python's http.server) answers over
HTTP/1.1 and the connection stays HTTP/1.1; a request with a body never offers it."""
import base64
import os
import random
import shutil
import socket
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import pytest

from conftest import free_port, run_rill, wait_for_port

BUILD = os.environ.get("RILL_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
BIG = os.urandom(1 << 20)


def get(*args, timeout=30):
    return run_rill("get", *args, timeout=timeout)


@pytest.fixture(scope="module")
def docroot(tmp_path_factory):
    root = tmp_path_factory.mktemp("docroot")
    (root / "small.txt").write_bytes(b"hello\n")
    (root / "big.bin").write_bytes(BIG)
    return root


def start(cmd, port, **kw):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    wait_for_port(port, proc)
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def rill_port(docroot):
    port = free_port()
    proc = start([os.environ.get("RILL_BIN") or os.path.join(BUILD, "rill"), "serve", "--listen",
                  f"127.0.0.1:{port}", "--tls-listen", "none", "--root", str(docroot)], port)
    yield port
    stop(proc)


def test_upgrade_to_rill_serve_then_streams_on_the_same_connection(rill_port):
    r = get("-v", "--http2", "-n", "3", f"http://127.0.0.1:{rill_port}/small.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello\n" * 3
    err = r.stderr.decode()
    assert "upgraded to h2c (101 Switching Protocols)" in err
    assert err.count("* connected to") == 1
    assert "send HEADERS stream=3" in err and "send HEADERS stream=5" in err  # after the switch


def test_upgrade_big_body_and_head(rill_port):
    r = get("--http2", f"http://127.0.0.1:{rill_port}/big.bin")
    assert r.returncode == 0 and r.stdout == BIG
    r = get("-v", "--http2", "-I", f"http://127.0.0.1:{rill_port}/big.bin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"HTTP/2 200") and b"content-length: 1048576" in r.stdout.lower()
    assert b"upgraded to h2c" in r.stderr


def test_upgrade_to_h2o(docroot, tmp_path):
    if not shutil.which("h2o"):
        pytest.skip("h2o is not installed")
    port = free_port()
    conf = tmp_path / "h2o.conf"
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    conf.write_text(f"user: {user}\nnum-threads: 1\npid-file: {tmp_path}/h2o.pid\n"
                    f"error-log: {tmp_path}/h2o.log\nlisten:\n  host: 127.0.0.1\n  port: {port}\n"
                    f"hosts:\n  default:\n    paths:\n      /:\n        file.dir: {docroot}\n")
    proc = start(["h2o", "-c", str(conf)], port, start_new_session=True)
    try:
        r = get("-v", "--http2", "-n", "2", f"http://127.0.0.1:{port}/big.bin", timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout == BIG * 2
        assert b"upgraded to h2c" in r.stderr
    finally:
        stop(proc)


def test_declined_upgrade_stays_http11(docroot):
    port = free_port()
    proc = start(["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                  str(docroot)], port)
    try:
        r = get("-v", "--http2", f"http://127.0.0.1:{port}/small.txt")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"hello\n"
        err = r.stderr.decode()
        assert "upgraded" not in err and "over http/1.1" in err
    finally:
        stop(proc)


class UpgradeServer:
    """Reads one HTTP/1.1 request, records it, answers 101 and then HTTP/2 (python3-h2) on stream 1
    and on the streams that follow, writing every reply in pieces (a byte per write for the 101
    head, then cut at random points) so the client meets the switch in the middle of a read."""

    def __init__(self, body=b"upgraded body\n", seed=1):
        self.body, self.rng = body, random.Random(seed)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.request, self.errors, self.streams = b"", [], []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def send_pieces(self, conn, data, per_byte=False):
        i = 0
        while i < len(data):
            n = 1 if per_byte else self.rng.randint(1, 7)
            conn.sendall(data[i:i + n])
            i += n
            time.sleep(0.001)

    def answer(self, h2c, sid):
        h2c.send_headers(sid, [(":status", "200"), ("content-length", str(len(self.body)))])
        h2c.send_data(sid, self.body, end_stream=True)

    def run(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(20)
            while b"\r\n\r\n" not in self.request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                self.request += chunk
            head = self.request.split(b"\r\n\r\n")[0].decode()
            fields = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
                      for l in head.split("\r\n")[1:]}
            settings = fields.get("http2-settings", "")
            h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
            h2c.initiate_upgrade_connection(settings)
            self.send_pieces(conn, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                             b"Upgrade: h2c\r\n\r\n", per_byte=True)
            self.answer(h2c, 1)
            self.send_pieces(conn, h2c.data_to_send())
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                for ev in h2c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        self.streams.append(ev.stream_id)
                        self.answer(h2c, ev.stream_id)
                out = h2c.data_to_send()
                if out:
                    self.send_pieces(conn, out)
            conn.close()
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))

    def close(self):
        self.sock.close()


def test_upgrade_answered_in_pieces():
    srv = UpgradeServer()
    try:
        r = get("-v", "--http2", "-n", "4", f"http://127.0.0.1:{srv.port}/x", timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"upgraded body\n" * 4
        assert b"upgraded to h2c" in r.stderr
        head = srv.request.decode().lower()
        assert "upgrade: h2c\r\n" in head and "connection: upgrade, http2-settings\r\n" in head
        settings = [l for l in head.split("\r\n") if l.startswith("http2-settings:")][0].split(":", 1)[1].strip()
        raw = base64.urlsafe_b64decode(settings + "=" * (-len(settings) % 4))
        assert len(raw) % 6 == 0 and len(raw) > 0  # SETTINGS parameters, base64url without padding
        assert "=" not in settings
        assert srv.streams == [3, 5, 7]  # the other three as HTTP/2 streams after the switch
        assert not srv.errors, srv.errors
    finally:
        srv.close()


def test_a_request_with_a_body_does_not_offer_the_upgrade():
    got = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]

    def serve():
        conn, _ = sock.accept()
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"abc"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        got.append(data)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = get("--http2", "-d", "abc", f"http://127.0.0.1:{port}/p")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"ok"
        t.join(10)
        assert got and b"upgrade" not in got[0].lower() and got[0].endswith(b"abc")
    finally:
        sock.close()
