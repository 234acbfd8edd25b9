"""Helpers for the server's integration tests: a document root, servers on free ports, and small
clients (curl, h2load, a raw HTTP/1.1 reader, a raw HTTP/2 frame client for what python-h2 will
not do, such as reading on after a GOAWAY)."""
import gzip
import hashlib
import os
import random
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import hpack

from conftest import RILL_BIN, free_port

BUILD = os.environ.get("RILL_BUILD") or os.path.join(os.path.dirname(RILL_BIN))
ECHO_BIN = os.path.join(BUILD, "example_echo_server")
HERE = os.path.dirname(os.path.abspath(__file__))

SMALL = b"hello"
BIG_SIZE = 3 * 1000 * 1000
INDEX = b"<!doctype html><title>index</title><p>the index page</p>\n"
SUB_INDEX = b"<p>sub index</p>\n"
PAGE = b"plain text that also exists gzip-compressed beside it\n" * 20


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def make_site(root):
    """The document root every static test uses; returns {relative path: bytes}."""
    big = random.Random(20261123).randbytes(BIG_SIZE)
    files = {
        "small.txt": SMALL,
        "big.bin": big,
        "index.html": INDEX,
        "sub/index.html": SUB_INDEX,
        "page.txt": PAGE,
        "page.txt.gz": gzip.compress(PAGE, mtime=0),
        ".hidden": b"secret\n",
    }
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    os.symlink("/etc/hostname", os.path.join(root, "escape"))
    return files


class Server:
    """A running rill server (or the echo example) on free ports, stopped with SIGTERM."""

    def __init__(self, argv, workdir, port, tls_port, access_log=None, announced=None):
        """announced: (plain, tls) for rill serve on port 0: which ports to read from its
        start-up lines."""
        self.port, self.tls_port, self.access_log = port, tls_port, access_log
        self.stderr_path = os.path.join(workdir, f"stderr-{port}-{time.monotonic_ns()}.txt")
        self.stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.stderr_file)
        self.returncode = None
        try:
            if announced:
                self.port, self.tls_port = wait_announced(self.proc, self.stderr_path, *announced)
            for p in (self.port, self.tls_port):
                if p:
                    wait_listening(p, self.proc, self.stderr_path)
        except Exception:
            self.kill()
            raise

    def url(self, path="/", tls=False):
        return f"https://localhost:{self.tls_port}{path}" if tls else f"http://127.0.0.1:{self.port}{path}"

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=15):
        """SIGTERM, then the exit status (killed after timeout: the test fails on None)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self.stderr_file.close()
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr_file.close()


ANNOUNCED = re.compile(rb"rill serve: (https?)://[^ ]*:(\d+)/ ")


def wait_announced(proc, stderr_path, plain, tls, timeout=10.0):
    """The ports rill serve says it bound (it prints the bound one for port 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(stderr_path, "rb") as f:
            text = f.read()
        ports = {m.group(1): int(m.group(2)) for m in ANNOUNCED.finditer(text)}
        if (not plain or b"http" in ports) and (not tls or b"https" in ports):
            return ports.get(b"http", 0), ports.get(b"https", 0)
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}: {text!r}")
        time.sleep(0.02)
    raise TimeoutError("rill serve did not say which ports it bound")


def wait_listening(port, proc, stderr_path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(stderr_path, "rb") as f:
                raise RuntimeError(f"server exited early with {proc.returncode}: {f.read()!r}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")


def start_server(workdir, root=None, tls=True, access_log=None, extra=(), binary=RILL_BIN,
                 threads=2):
    # rill serve binds port 0 and says which port it got: a port from free_port() is given back
    # before the server binds it, and another test's server may take it meanwhile (and one that
    # sets SO_REUSEPORT would share it). The echo example cannot say: free ports, retried when
    # taken.
    announced = binary == RILL_BIN
    for attempt in range(3):
        port = 0 if announced else free_port()
        tls_port = 0 if announced or not tls else free_port()
        state = os.path.join(workdir, "state")
        os.makedirs(state, exist_ok=True)
        argv = [binary] + (["serve"] if binary == RILL_BIN else []) + [
            "--listen", f"127.0.0.1:{port}",
            "--tls-listen", f"127.0.0.1:{tls_port}" if tls else "none",
            "--state-dir", state, "--threads", str(threads)]
        if root:
            argv += ["--root", root]
        if access_log:
            argv += ["--access-log", access_log]
        argv += list(extra)
        try:
            return Server(argv, workdir, port, tls_port, access_log,
                          (True, bool(tls)) if announced else None)
        except RuntimeError as e:
            if "in use" not in str(e) or attempt == 2:
                raise


def cert_path(workdir):
    return os.path.join(workdir, "state", "localhost-cert.pem")


# ---- external clients ------------------------------------------------------------------------

def curl(*args, timeout=60):
    """curl with -sS; returns the CompletedProcess (stdout bytes: the body unless -o)."""
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout - 5), *args],
                          capture_output=True, timeout=timeout)


H2LOAD_REQUESTS = re.compile(rb"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                             rb"(\d+) failed, (\d+) errored, (\d+) timeout")
H2LOAD_STATUS = re.compile(rb"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def parse_h2load(out):
    m = H2LOAD_REQUESTS.search(out)
    assert m, out.decode(errors="replace")
    keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    result = dict(zip(keys, map(int, m.groups())))
    s = H2LOAD_STATUS.search(out)
    result["2xx"] = int(s.group(1)) if s else 0
    return result


def node(script, *args, timeout=30):
    return subprocess.run(["node", os.path.join(HERE, script), *args], capture_output=True,
                          timeout=timeout)


# ---- raw HTTP/1.1 ----------------------------------------------------------------------------

def h1_connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s, s.makefile("rb")


def read_h1_response(f, head_request=False):
    """One response from a buffered reader: (status, [(name, value)], body, trailers), following
    content-length, chunked coding or the connection's end. None when the connection is closed."""
    line = f.readline()
    if not line:
        return None
    parts = line.rstrip(b"\r\n").split(b" ", 2)
    status = int(parts[1])
    headers = read_fields(f)
    fields = {n: v for n, v in headers}
    trailers = []
    if head_request or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            size = int(f.readline().split(b";")[0].strip(), 16)
            if size == 0:
                break
            body += f.read(size)
            assert f.read(2) == b"\r\n"
        trailers = read_fields(f)
    elif b"content-length" in fields:
        body = f.read(int(fields[b"content-length"]))
    else:
        body = f.read()
    return status, headers, body, trailers


def read_fields(f):
    out = []
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            return out
        name, _, value = line.rstrip(b"\r\n").partition(b":")
        out.append((name.strip().lower(), value.strip()))


def field(headers, name):
    for n, v in headers:
        if n == name:
            return v
    return None


def recv_all(sock, timeout=5):
    """Everything until the peer closes (or the timeout passes: then what arrived so far)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False


# ---- raw HTTP/2 frames -----------------------------------------------------------------------

DATA, HEADERS, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0, 1, 3, 4, 5, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class RawH2:
    """A frame-level HTTP/2 client: answers SETTINGS and PING itself, decodes HEADERS, and keeps
    reading after GOAWAY (python-h2 refuses to), so shutdown behaviour can be observed."""

    def __init__(self, port, tls=False, settings=None, timeout=10):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.buf = b""
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        payload = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
        self.sock.sendall(PREFACE + self.frame(SETTINGS, 0, 0, payload))
        self.closed = False

    @staticmethod
    def frame(ftype, flags, stream, payload=b""):
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
            struct.pack(">I", stream) + payload

    def send(self, ftype, flags, stream, payload=b""):
        self.sock.sendall(self.frame(ftype, flags, stream, payload))

    def request(self, stream, path, method="GET", headers=(), end=True):
        block = self.enc.encode([(":method", method), (":scheme", "http"),
                                 (":authority", "localhost"), (":path", path), *headers])
        self.send(HEADERS, END_HEADERS | (END_STREAM if end else 0), stream, block)

    def window_update(self, stream, n):
        self.send(WINDOW_UPDATE, 0, stream, struct.pack(">I", n))

    def read_frame(self, timeout=10):
        """(type, flags, stream, payload); HEADERS payloads come decoded as a list of pairs.
        None when the connection closed; raises socket.timeout."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    ftype, flags = self.buf[3], self.buf[4]
                    stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                    payload = self.buf[9:9 + length]
                    self.buf = self.buf[9 + length:]
                    return self._handle(ftype, flags, stream, payload)
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def _handle(self, ftype, flags, stream, payload):
        if ftype == SETTINGS and not flags & ACK:
            self.send(SETTINGS, ACK, 0)
        elif ftype == PING and not flags & ACK:
            self.send(PING, ACK, 0, payload)
        elif ftype in (HEADERS, PUSH_PROMISE):
            assert flags & END_HEADERS, "CONTINUATION not expected for these small heads"
            if ftype == PUSH_PROMISE:
                payload = payload[4:]
            payload = [(n.decode() if isinstance(n, bytes) else n,
                        v.decode() if isinstance(v, bytes) else v)
                       for n, v in self.dec.decode(payload)]
        return ftype, flags, stream, payload

    def close(self):
        self.sock.close()


# ---- a python3-h2 server (a peer no one here wrote) ---------------------------------------------

class PythonH2Server:
    """python3-h2 on threads, cleartext h2c: answers each request with "<path> <body length>"
    (404 for /missing), with a trailer when asked; validates the client's frames with python3-h2's
    own checks. Counts connections; errors holds what went wrong on a connection."""

    def __init__(self, trailers=False):
        self.trailers, self.connections, self.errors = trailers, 0, []
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, sock):
        import h2.config
        import h2.connection
        import h2.events
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8", validate_inbound_headers=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        paths, sizes = {}, {}
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        paths[ev.stream_id] = dict(ev.headers)[":path"]
                        sizes[ev.stream_id] = 0
                    elif isinstance(ev, h2.events.DataReceived):
                        sizes[ev.stream_id] += len(ev.data)
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        sid = ev.stream_id
                        body = f"{paths[sid]} {sizes[sid]}".encode()
                        status = "404" if paths[sid] == "/missing" else "200"
                        conn.send_headers(sid, [(":status", status),
                                                ("content-length", str(len(body)))])
                        conn.send_data(sid, body, end_stream=not self.trailers)
                        if self.trailers:
                            conn.send_headers(sid, [("x-served-by", "python-h2")], end_stream=True)
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        sock.sendall(conn.data_to_send())
                        return
                sock.sendall(conn.data_to_send())
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.errors.append(repr(e))
        finally:
            sock.close()

    def close(self):
        self.lsock.close()
