"""The rill HTTP/2 session in the client role (tests/tools/h2_testclient) against independent
servers: nghttpd (nghttp2-server) with push and trailers, a python3-h2 server, and rill's own
server role."""
import os
import shutil
import socket
import subprocess
import time

import pytest

TOOLS = os.environ.get("RILL_TOOLS") or os.path.join(os.path.dirname(__file__), "..", "..", "build", "tests")


def fnv1a(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return f"{h:08x}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError


def run_client(port, *args):
    out = subprocess.run([os.path.join(TOOLS, "h2_testclient"), str(port), *args], capture_output=True,
                         text=True, timeout=60)
    lines = [line.split() for line in out.stdout.splitlines()]
    return out.returncode, lines, out.stderr


@pytest.fixture
def nghttpd(tmp_path):
    if shutil.which("nghttpd") is None:
        pytest.skip("nghttpd not installed")
    files = {"small.txt": b"hello\n", "big.bin": bytes((i * 7) % 251 for i in range(3_000_000)),
             "style.css": b"body{}"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    port = free_port()
    proc = subprocess.Popen(["nghttpd", "--no-tls", "-d", str(tmp_path), "--trailer=x-t: done",
                             "-p", "/small.txt=/style.css", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_port(port, proc)
    yield port, files
    proc.kill()
    proc.wait()


def test_client_against_nghttpd(nghttpd):
    port, files = nghttpd
    rc, lines, err = run_client(port, "/small.txt", "/big.bin", "/missing")
    assert rc == 0, err
    small, big, missing, pushed = lines
    assert pushed == ["pushed", "1"]  # nghttpd pushes /style.css with /small.txt
    assert small[1:4] == ["200", str(len(files["small.txt"])), fnv1a(files["small.txt"])]
    assert "x-t=done" in small  # trailers
    assert big[1:4] == ["200", str(len(files["big.bin"])), fnv1a(files["big.bin"])]
    assert missing[1] == "404"


def test_client_small_window_against_nghttpd(nghttpd):
    port, files = nghttpd
    rc, lines, err = run_client(port, "--window", "16384", "/big.bin", "/big.bin")
    assert rc == 0, err
    for line in lines[:-1]:
        assert line[1:4] == ["200", str(len(files["big.bin"])), fnv1a(files["big.bin"])]


@pytest.fixture
def rill_server():
    proc = subprocess.Popen([os.path.join(TOOLS, "h2_testserver")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().split()[1])
    yield port
    proc.kill()
    proc.wait()


def test_client_against_rill_server(rill_server):
    body = bytes(ord("a") + i % 26 for i in range(200000))
    rc, lines, err = run_client(rill_server, "--post-bytes", "200000", *["/echo"] * 20)
    assert rc == 0, err
    assert len(lines) == 21
    lines = lines[:-1]
    for line in lines:
        assert line[1:4] == ["200", "200000", fnv1a(body)]
    rc, lines, err = run_client(rill_server, "/trailers", "/size/100000", "/info")
    assert rc == 0, err
    assert lines[0][1:] == ["200", "4", fnv1a(b"data"), "trailers:", "x-trailer=yes"]
    assert lines[1][2] == "100000"
    assert lines[2][1] == "200"


@pytest.fixture
def python_h2_server():
    """A python3-h2 server: answers every request with its path and the request body's length,
    plus a trailer; checks our client's frames with python3-h2's own validation."""
    from server_fixtures import PythonH2Server
    srv = PythonH2Server(trailers=True)
    yield srv.port, srv.errors
    srv.close()


def test_client_against_python_h2_server(python_h2_server):
    port, errors = python_h2_server
    rc, lines, err = run_client(port, "--post-bytes", "100000", "/a", "/b", "/c")
    assert rc == 0, err + " / " + "; ".join(errors)
    assert not errors
    for line, path in zip(lines, ["/a", "/b", "/c"]):
        body = f"{path} 100000".encode()
        assert line[1:] == ["200", str(len(body)), fnv1a(body), "trailers:", "x-served-by=python-h2"]
