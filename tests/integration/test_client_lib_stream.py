"""The client library's streaming against real peers, through tests/tools/client_stream.c (one
request on rill/client.h): a 100 MiB request body streamed with back-pressure to rill's echo example
(HTTP/1.1 chunked and h2c), byte-identical on the way back; the same to a python3-h2 server that
checks every frame; a download paused at its head from nghttpd (the server stops once the
stream's 4 MiB window is used) and from rill's HTTP/1.1 server; 103 Early Hints to the
application; Expect: 100-continue with rill's server and nghttpd."""
import hashlib
import os
import shutil
import subprocess
import time

import pytest

from conftest import free_port, wait_for_port

BUILD = os.environ.get("RILL_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
TOOLS = os.environ.get("RILL_TOOLS") or os.path.join(BUILD, "tests")
TOOL = os.path.join(TOOLS, "client_stream")
STREAM_BUFFER = 256 * 1024  # the client's default


def sha(data):
    return hashlib.sha256(data).hexdigest()


def run_tool(*args, timeout=300):
    if not os.path.exists(TOOL):
        pytest.skip("tests/tools/client_stream not built")
    r = subprocess.run([TOOL, *args], capture_output=True, timeout=timeout)
    out = {}
    for line in r.stdout.decode().splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return r, {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def start(cmd, port):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_port(port, proc)
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("body") / "body.bin"
    with open(path, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest() if hasattr(hashlib, "file_digest") \
            else sha(f.read())
    return str(path), digest


@pytest.fixture(scope="module")
def docroot(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    data = os.urandom(32 << 20)
    (root / "big.bin").write_bytes(data)
    return root, sha(data)


@pytest.fixture
def echo_server():
    exe = os.path.join(BUILD, "example_echo_server")
    if not os.path.exists(exe):
        pytest.skip("example_echo_server not built")
    port = free_port()
    proc = start([exe, "--listen", f"127.0.0.1:{port}", "--tls-listen", "none"], port)
    yield port
    stop(proc)


PROTOCOLS = [pytest.param([], "http/1.1", id="http1"), pytest.param(["--h2"], "h2", id="h2c")]


@pytest.mark.parametrize("flags,proto", PROTOCOLS)
def test_streamed_post_to_echo_is_byte_identical(echo_server, big_file, flags, proto):
    path, digest = big_file
    r, out = run_tool(f"http://127.0.0.1:{echo_server}/echo", *flags, "--data", path)
    assert r.returncode == 0, r.stderr
    assert out["status"] == "200"
    assert out["protocol"] == proto
    assert int(out["body_bytes"]) == 100 << 20
    assert out["body_sha256"] == digest
    # Back-pressure: the writer waited for on_drain, and never held more than the buffer plus one
    # write (64 KiB).
    assert int(out["drains"]) > 0
    assert int(out["max_buffered"]) <= STREAM_BUFFER + 65536


@pytest.mark.parametrize("flags,proto", PROTOCOLS)
def test_streamed_post_with_content_length_in_odd_pieces(echo_server, tmp_path, flags, proto):
    data = os.urandom(3 * 1000 * 1000 + 7)
    body = tmp_path / "b.bin"
    body.write_bytes(data)
    r, out = run_tool(f"http://127.0.0.1:{echo_server}/echo", *flags, "--data", str(body),
                      "--length", "--piece", "4093", "--buffer", "20000")
    assert r.returncode == 0, r.stderr
    assert out["protocol"] == proto
    assert out["body_sha256"] == sha(data)
    assert int(out["max_buffered"]) <= 20000 + 4093


@pytest.mark.parametrize("trailer", [None, "x-sum=abc"])
def test_streamed_post_to_python_h2(tmp_path, trailer):
    """python3-h2 validates every frame the client sends: DATA within its windows, the trailing
    HEADERS (no pseudo-header, END_STREAM) when there is a trailer."""
    pytest.importorskip("h2.connection")
    from server_fixtures import PythonH2Server
    srv = PythonH2Server()
    try:
        data = os.urandom(5 << 20)
        body = tmp_path / "b.bin"
        body.write_bytes(data)
        args = [f"http://127.0.0.1:{srv.port}/up", "--h2", "--data", str(body), "--piece", "10000"]
        if trailer:
            args += ["--trailer", trailer]
        r, out = run_tool(*args)
        assert r.returncode == 0, r.stderr
        assert out["status"] == "200"
        assert out["body_sha256"] == sha(f"/up {len(data)}".encode())
        assert srv.errors == []
        assert srv.connections == 1
    finally:
        srv.close()


def test_paused_download_from_nghttpd_stops_at_the_window(docroot):
    if shutil.which("nghttpd") is None:
        pytest.skip("nghttpd not installed")
    root, digest = docroot
    port = free_port()
    proc = start(["nghttpd", "--no-tls", "-d", str(root), str(port)], port)
    try:
        r, out = run_tool(f"http://127.0.0.1:{port}/big.bin", "--h2", "--pause-ms", "1500")
    finally:
        stop(proc)
    assert r.returncode == 0, r.stderr
    assert out["paused_data"] == "0"  # no on_data while paused
    # The server sent what the stream's window allowed (4 MiB) and no byte more: the paused stream
    # gave no credit back.
    at_resume = int(out["wire_data_at_resume"])
    assert 0 < at_resume <= 4 << 20
    assert int(out["body_bytes"]) == 32 << 20
    assert out["body_sha256"] == digest


def test_paused_download_over_http1(docroot):
    root, digest = docroot
    rill = os.environ.get("RILL_BIN") or os.path.join(BUILD, "rill")
    port = free_port()
    proc = start([rill, "serve", "--listen", f"127.0.0.1:{port}", "--tls-listen", "none",
                  "--root", str(root)], port)
    try:
        r, out = run_tool(f"http://127.0.0.1:{port}/big.bin", "--pause-ms", "1000")
    finally:
        stop(proc)
    assert r.returncode == 0, r.stderr
    assert out["protocol"] == "http/1.1"
    assert out["paused_data"] == "0"
    assert out["body_sha256"] == digest


@pytest.mark.parametrize("flags,proto", PROTOCOLS)
def test_early_hints_reach_the_application(echo_server, flags, proto):
    r, out = run_tool(f"http://127.0.0.1:{echo_server}/hints", *flags)
    assert r.returncode == 0, r.stderr
    assert out["protocol"] == proto
    assert out["informational"].startswith("103 ")
    assert "link=</style.css>" in out["informational"].lower()
    assert out["status"] == "200"


@pytest.fixture
def upload(tmp_path):
    data = os.urandom(3 * 1000 * 1000)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    return str(path), sha(data)


def test_expect_continue_over_http1_waits_for_the_100(echo_server, upload):
    path, digest = upload
    r, out = run_tool(f"http://127.0.0.1:{echo_server}/echo", "--data", path,
                      "--header", "Expect: 100-continue")
    assert r.returncode == 0, r.stderr
    assert out["informational"] == "100"
    assert out["body_sha256"] == digest


def test_expect_continue_over_h2_gets_the_100(echo_server, upload):
    """rill's HTTP/2 server answers 100 once the handler has taken the request: the body goes at
    once, whole (the one-second wait without a 100 is in tests/unit/test_client_stream.c)."""
    path, digest = upload
    r, out = run_tool(f"http://127.0.0.1:{echo_server}/echo", "--h2", "--data", path,
                      "--header", "Expect: 100-continue")
    assert r.returncode == 0, r.stderr
    assert out["informational"] == "100"
    assert out["body_sha256"] == digest


def test_expect_continue_from_nghttpd(tmp_path, upload):
    if shutil.which("nghttpd") is None:
        pytest.skip("nghttpd not installed")
    (tmp_path / "s.txt").write_bytes(b"hello\n")
    port = free_port()
    proc = start(["nghttpd", "--no-tls", "-d", str(tmp_path), str(port)], port)
    try:
        r, out = run_tool(f"http://127.0.0.1:{port}/s.txt", "--h2", "--data", upload[0],
                          "--header", "Expect: 100-continue")
    finally:
        stop(proc)
    assert r.returncode == 0, r.stderr
    assert out["informational"] == "100"
    assert out["status"] == "200"
    assert out["body_sha256"] == sha(b"hello\n")
