"""`rill get` (the request client, rill_client) against servers no one here wrote: nghttpd (h2c and
h2 over TLS), a python3-h2 server, Python's http.server (HTTP/1.1 keep-alive, chunked), and rill's
own server and echo example: bodies byte for byte, heads, POST bodies, files, --fail, refused
connections, certificates, timeouts, and several URLs on one connection."""
import hashlib
import http.server
import os
import re
import shutil
import socket
import socketserver
import subprocess
import threading
import time

import pytest

from conftest import RILL_BIN, free_port, run_rill, wait_for_port

BUILD = os.environ.get("RILL_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
BIG = os.urandom(1 << 20)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def get(*args, timeout=30):
    return run_rill("get", *args, timeout=timeout)


@pytest.fixture(scope="module")
def docroot(tmp_path_factory):
    root = tmp_path_factory.mktemp("docroot")
    (root / "empty.txt").write_bytes(b"")
    (root / "big.bin").write_bytes(BIG)
    (root / "small.txt").write_bytes(b"hello\n")
    return root


def start(cmd, port, **kw):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    wait_for_port(port, proc)
    return proc


def stop(proc):
    proc.terminate()
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate for localhost / 127.0.0.1, and one for another name."""
    d = tmp_path_factory.mktemp("certs")
    out = {}
    for name, san in (("good", "DNS:localhost,IP:127.0.0.1"), ("other", "DNS:other.example")):
        key, crt = d / f"{name}.key", d / f"{name}.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=test",
                        "-addext", f"subjectAltName={san}", "-keyout", str(key), "-out", str(crt)],
                       check=True, capture_output=True)
        out[name] = (str(key), str(crt))
    return out


@pytest.fixture
def nghttpd_h2c(docroot):
    if shutil.which("nghttpd") is None:
        pytest.skip("nghttpd not installed")
    port = free_port()
    proc = start(["nghttpd", "--no-tls", "-d", str(docroot), str(port)], port)
    yield port
    stop(proc)


@pytest.fixture
def nghttpd_tls(docroot, cert):
    if shutil.which("nghttpd") is None:
        pytest.skip("nghttpd not installed")
    procs = []

    def run(which):
        port = free_port()
        key, crt = cert[which]
        procs.append(start(["nghttpd", "-d", str(docroot), str(port), key, crt], port))
        return port, crt
    yield run
    for p in procs:
        stop(p)


@pytest.fixture
def rill_serve(docroot, tmp_path):
    procs = []

    def run(*extra):
        port = free_port()
        log = tmp_path / f"access-{port}.log"
        procs.append(start([os.environ.get("RILL_BIN") or os.path.join(BUILD, "rill"), "serve",
                            "--listen", f"127.0.0.1:{port}", "--tls-listen", "none",
                            "--root", str(docroot), "--access-log", str(log), *extra], port))
        return port
    yield run
    for p in procs:
        stop(p)


@pytest.fixture
def echo_server():
    exe = os.path.join(BUILD, "example_echo_server")
    if not os.path.exists(exe):
        pytest.skip("example_echo_server not built")
    port = free_port()
    proc = start([exe, "--listen", f"127.0.0.1:{port}", "--tls-listen", "none"], port)
    yield port
    stop(proc)


@pytest.fixture
def h2_server():
    """A python3-h2 server that counts connections and answers each request with its path and the
    size of its body (server_fixtures.PythonH2Server)."""
    pytest.importorskip("h2.connection")
    from server_fixtures import PythonH2Server
    srv = PythonH2Server()
    yield srv
    srv.close()


@pytest.fixture
def http11_server(docroot):
    """Python's http.server speaking HTTP/1.1 keep-alive over the docroot; /chunked answers with a
    chunked body and a trailer. Counts connections."""
    state = {"connections": 0}

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(docroot), **kw)

        def setup(self):
            state["connections"] += 1
            super().setup()

        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path != "/chunked":
                return super().do_GET()
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"one,", b"two,", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\nx-done: yes\r\n\r\n")

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], state
    srv.shutdown()
    srv.server_close()


# ---- HTTP/2 --------------------------------------------------------------------------------------

def test_h2c_files_against_nghttpd(nghttpd_h2c):
    port = nghttpd_h2c
    base = f"http://127.0.0.1:{port}"
    r = get("--http2-prior-knowledge", f"{base}/big.bin")
    assert r.returncode == 0, r.stderr
    assert sha(r.stdout) == sha(BIG)
    r = get("--http2-prior-knowledge", f"{base}/empty.txt")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


def test_head_against_nghttpd(nghttpd_h2c):
    port = nghttpd_h2c
    for name, size in (("big.bin", len(BIG)), ("empty.txt", 0)):
        r = get("-I", "--http2-prior-knowledge", f"http://127.0.0.1:{port}/{name}")
        assert r.returncode == 0, r.stderr
        head = r.stdout.decode()
        assert head.startswith("HTTP/2 200"), head
        assert f"content-length: {size}\r\n" in head
        assert head.endswith("\r\n\r\n")


def test_several_urls_share_one_h2_connection_nghttpd(nghttpd_h2c):
    port = nghttpd_h2c
    base = f"http://127.0.0.1:{port}"
    r = get("--http2-prior-knowledge", f"{base}/big.bin", f"{base}/small.txt", f"{base}/big.bin",
            f"{base}/empty.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == BIG + b"hello\n" + BIG  # in URL order, whatever order they finished in


def test_nghttpd_saw_one_connection(docroot):
    """nghttpd -v numbers its connections: four URLs are one id."""
    if shutil.which("nghttpd") is None:
        pytest.skip("nghttpd not installed")
    port = free_port()
    proc = start(["nghttpd", "-v", "--no-tls", "-d", str(docroot), str(port)], port)
    # wait_for_port made a connection of its own: it counts as one id too
    base = f"http://127.0.0.1:{port}"
    r = get("--http2-prior-knowledge", f"{base}/small.txt", f"{base}/big.bin", f"{base}/small.txt")
    log = stop(proc)[0].decode(errors="replace")
    assert r.returncode == 0, r.stderr
    ids = set(re.findall(r"\[id=(\d+)\]", log))
    streams = re.findall(r"recv HEADERS frame <length=\d+, flags=0x\w+, stream_id=(\d+)>", log)
    assert len(streams) == 3, log[-2000:]
    assert len(ids) <= 2  # the probe's and ours


def test_several_urls_one_connection_python_h2(h2_server):
    port = h2_server.port
    base = f"http://127.0.0.1:{port}"
    r = get("--http2-prior-knowledge", "--data-binary", "xyz", f"{base}/a", f"{base}/b", f"{base}/c")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"/a 3/b 3/c 3"
    assert h2_server.connections == 1
    assert h2_server.errors == []


def test_fail_on_404_python_h2(h2_server):
    port = h2_server.port
    r = get("--http2-prior-knowledge", "--fail", f"http://127.0.0.1:{port}/missing")
    assert r.returncode == 22
    assert r.stdout == b""
    assert len(r.stderr.decode().strip().splitlines()) == 1
    r = get("--http2-prior-knowledge", f"http://127.0.0.1:{port}/missing")
    assert (r.returncode, r.stdout) == (0, b"/missing 0")


def test_h2_over_tls_against_nghttpd(nghttpd_tls):
    port, crt = nghttpd_tls("good")
    url = f"https://localhost:{port}/big.bin"
    r = get("--cacert", crt, "-v", url)
    assert r.returncode == 0, r.stderr
    assert sha(r.stdout) == sha(BIG)
    err = r.stderr.decode()
    assert f"* connected to localhost:{port} over h2 (TLS" in err
    # -v shows the frames both ways: our HEADERS (END_STREAM|END_HEADERS), the server's DATA
    assert "* send HEADERS stream=1 " in err and "flags=0x05" in err
    assert re.search(r"\* recv DATA stream=1 length=\d+", err)
    assert "* send GOAWAY stream=0" in err  # the polite end


def test_client_offers_aes_128_first(cert):
    """openssl s_server follows the client's order of TLS 1.3 suites (no server preference): rill
    offers TLS_AES_128_GCM_SHA256 first (OpenSSL's default order starts with AES-256), and -v
    names the suite."""
    key, crt = cert["good"]
    port = free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", str(port), "-key", key, "-cert", crt,
                            "-www", "-tls1_3"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, srv)
        r = get("-k", "-v", f"https://127.0.0.1:{port}/")
        err = r.stderr.decode()
        assert "over http/1.1 (TLS 1.3, TLS_AES_128_GCM_SHA256)" in err, err
        assert b"TLS_AES_128_GCM_SHA256" in r.stdout  # the server's own page says the same
    finally:
        srv.kill()
        srv.wait()


def test_bad_certificate_refused_without_k(nghttpd_tls):
    port, _ = nghttpd_tls("good")
    url = f"https://localhost:{port}/small.txt"
    r = get(url)  # self-signed: not in the system store
    assert r.returncode == 35
    assert r.stdout == b""
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "certificate" in lines[0], lines
    r = get("-k", url)
    assert (r.returncode, r.stdout) == (0, b"hello\n")


def test_system_store_follows_ssl_cert_file_and_dir(nghttpd_tls, tmp_path):
    """The system store is the hashed directory alone only while the bundle and directory in force
    are the system's own; SSL_CERT_FILE or SSL_CERT_DIR naming other places is OpenSSL's rule."""
    port, crt = nghttpd_tls("good")
    url = f"https://localhost:{port}/small.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSL_CERT_")}

    def get_with(**extra):
        return subprocess.run([RILL_BIN, "get", url], capture_output=True, timeout=30,
                              env=dict(env, **extra))
    assert get_with().returncode == 35  # the system's CAs do not include our self-signed one
    r = get_with(SSL_CERT_FILE=crt)
    assert (r.returncode, r.stdout) == (0, b"hello\n"), r.stderr
    hashed = tmp_path / "ca-dir"
    hashed.mkdir()
    subject_hash = subprocess.run(["openssl", "x509", "-noout", "-subject_hash", "-in", crt],
                                  capture_output=True, check=True, text=True).stdout.strip()
    shutil.copy(crt, hashed / f"{subject_hash}.0")
    r = get_with(SSL_CERT_DIR=str(hashed))
    assert (r.returncode, r.stdout) == (0, b"hello\n"), r.stderr
    r = get_with(SSL_CERT_DIR=str(tmp_path))  # no hash links there, nor our CA
    assert r.returncode == 35


def test_certificate_for_another_name_refused(nghttpd_tls):
    port, crt = nghttpd_tls("other")
    r = get("--cacert", crt, f"https://localhost:{port}/small.txt")
    assert r.returncode == 35, r.stderr
    assert len(r.stderr.decode().strip().splitlines()) == 1


# ---- HTTP/1.1 ------------------------------------------------------------------------------------

def test_http11_keep_alive_and_chunked(http11_server):
    port, state = http11_server
    base = f"http://127.0.0.1:{port}"
    r = get("-i", f"{base}/chunked")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert r.stdout.endswith(b"\r\n\r\none,two,threex-done: yes\r\n")  # the trailer, as curl -i
    before = state["connections"]
    urls = [f"{base}/big.bin", f"{base}/small.txt", f"{base}/empty.txt", f"{base}/chunked"]
    r = get("--max-connections", "1", *urls)  # one after another on one keep-alive connection
    assert r.returncode == 0, r.stderr
    assert r.stdout == BIG + b"hello\n" + b"one,two,three"
    assert state["connections"] - before == 1
    # by default they go at once, on a connection each (up to 6); bodies still in URL order
    before = state["connections"]
    r = get(*urls)
    assert r.returncode == 0, r.stderr
    assert r.stdout == BIG + b"hello\n" + b"one,two,three"
    assert 1 <= state["connections"] - before <= 4


def test_http11_head_of_files(http11_server):
    port, _ = http11_server
    r = get("-I", f"http://127.0.0.1:{port}/big.bin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 1048576\r\n" in r.stdout
    assert r.stdout.endswith(b"\r\n\r\n")


# ---- rill's own server ---------------------------------------------------------------------------

@pytest.mark.parametrize("proto", [[], ["--http2-prior-knowledge"], ["--http1.1"]])
def test_rill_server_files(rill_serve, proto, tmp_path):
    port = rill_serve()
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "out.bin"
    r = get(*proto, "-o", str(out), f"{base}/big.bin", f"{base}/empty.txt")
    assert r.returncode == 0, r.stderr
    assert sha(out.read_bytes()) == sha(BIG)
    assert r.stdout == b""
    r = get(*proto, "-o", str(tmp_path / "empty"), f"{base}/empty.txt")
    assert r.returncode == 0 and (tmp_path / "empty").read_bytes() == b""
    r = get(*proto, "-i", f"{base}/small.txt")
    assert r.returncode == 0
    head, body = r.stdout.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/2 200" if proto == ["--http2-prior-knowledge"] else b"HTTP/1.1 200")
    assert b"\r\ncontent-length: 6" in head.lower()
    assert body == b"hello\n"


def test_rill_server_remote_name(rill_serve, tmp_path):
    port = rill_serve()
    r = subprocess.run([os.environ.get("RILL_BIN") or os.path.join(BUILD, "rill"), "get", "-O",
                        f"http://127.0.0.1:{port}/big.bin"], cwd=tmp_path, capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert sha((tmp_path / "big.bin").read_bytes()) == sha(BIG)


def test_rill_server_logs_every_request_over_h2(rill_serve, tmp_path):
    """(rill's access log has no connection id: nghttpd and python3-h2 count connections.)"""
    port = rill_serve()
    base = f"http://127.0.0.1:{port}"
    r = get("--http2-prior-knowledge", *[f"{base}/small.txt"] * 5)
    assert r.returncode == 0 and r.stdout == b"hello\n" * 5
    log = tmp_path / f"access-{port}.log"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and log.read_text().count("GET /small.txt") < 5:
        time.sleep(0.05)
    lines = [ln for ln in log.read_text().splitlines() if "/small.txt" in ln]
    assert len(lines) == 5 and all('"GET /small.txt HTTP/2"' in ln for ln in lines), lines


def test_more_urls_than_the_stream_limit(rill_serve):
    """Streams the server refuses (REFUSED_STREAM, sent before its SETTINGS arrived) are sent
    again on the same connection, as its limit allows."""
    port = rill_serve("--max-concurrent-streams", "3")
    r = get("-v", "--http2-prior-knowledge", *[f"http://127.0.0.1:{port}/big.bin"] * 12)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == BIG * 12
    assert r.stderr.decode().count("* connected to") == 1


def test_rill_server_over_tls(docroot, cert, tmp_path):
    key, crt = cert["good"]
    port = free_port()
    proc = start([os.environ.get("RILL_BIN") or os.path.join(BUILD, "rill"), "serve", "--listen",
                  "none", "--tls-listen", f"127.0.0.1:{port}", "--cert", crt, "--key", key,
                  "--root", str(docroot)], port)
    try:
        for proto, word in (([], "h2"), (["--http1.1"], "http/1.1")):
            r = get(*proto, "-v", "--cacert", crt, f"https://localhost:{port}/big.bin",
                    f"https://localhost:{port}/small.txt")
            assert r.returncode == 0, r.stderr
            assert r.stdout == BIG + b"hello\n"
            assert f"over {word} (TLS" in r.stderr.decode()
        r = get(f"https://localhost:{port}/small.txt")
        assert r.returncode == 35
    finally:
        stop(proc)


@pytest.mark.parametrize("proto", [["--http2-prior-knowledge"], ["--http1.1"]])
def test_post_echo(echo_server, proto, tmp_path):
    body = tmp_path / "body.bin"
    body.write_bytes(BIG)
    r = get(*proto, "--data-binary", f"@{body}", f"http://127.0.0.1:{echo_server}/echo")
    assert r.returncode == 0, r.stderr
    assert sha(r.stdout) == sha(BIG)
    r = get(*proto, "-d", "a=1", "-d", "b=2", f"http://127.0.0.1:{echo_server}/echo")
    assert (r.returncode, r.stdout) == (0, b"a=1&b=2")


def test_fail_on_404_rill_server(rill_serve, tmp_path):
    port = rill_serve()
    out = tmp_path / "x"
    r = get("--fail", "-o", str(out), f"http://127.0.0.1:{port}/missing")
    assert r.returncode == 22
    assert not out.exists()
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "404" in lines[0]


# ---- failures ------------------------------------------------------------------------------------

def test_refused_connection(refused_port):
    port = refused_port  # nothing listens there
    r = get(f"http://127.0.0.1:{port}/")
    assert r.returncode == 7
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0].lower(), lines
    r = get("-s", f"http://127.0.0.1:{port}/")
    assert (r.returncode, r.stderr) == (7, b"")


def test_max_time_when_the_server_never_answers():
    held = []
    with socket.socket() as s:  # accepts, reads, and never answers
        s.bind(("127.0.0.1", 0))
        s.listen(4)

        def hold():
            c, _ = s.accept()
            held.append(c)
            c.recv(4096)

        t = threading.Thread(target=hold, daemon=True)
        t.start()
        t0 = time.monotonic()
        r = get("--max-time", "0.5", f"http://127.0.0.1:{s.getsockname()[1]}/")
        assert time.monotonic() - t0 < 5
        t.join(5)
        for c in held:
            c.close()
    assert r.returncode == 28, r.stderr
    assert len(r.stderr.decode().strip().splitlines()) == 1


def test_connection_lost_mid_response():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)

        def answer():
            c, _ = s.accept()
            c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
            c.close()
        th = threading.Thread(target=answer)
        th.start()
        r = get(f"http://127.0.0.1:{s.getsockname()[1]}/")
        th.join()
    assert r.returncode in (8, 56), r.stderr
    assert len(r.stderr.decode().strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["-X"], ["--nope", "http://x/"], ["ftp://x/"], [],
                                  ["-H", "no colon", "http://x/"], ["--max-time", "soon", "http://x/"],
                                  ["--http1.1", "--http2-prior-knowledge", "http://x/"],
                                  ["http://127.0.0.1:1/", "http://:80/"], ["-O", "http://x/"]])
def test_bad_usage_exits_2(args):
    r = get(*args)
    assert r.returncode == 2
    assert r.stderr.decode().startswith("rill get: ")


def test_unsupported_flags_say_so():
    r = get("-u", "me:pw", "http://127.0.0.1:1/")
    assert r.returncode == 2
    assert "not yet supported" in r.stderr.decode()
