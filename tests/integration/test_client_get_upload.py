"""`rill get --data-binary @FILE` streams the file: read in pieces as the connection takes them
(HTTP/2 flow control, the socket's pace on HTTP/1.1), sent with its size as content-length,
opened again for each request (-n repeats), never held whole in memory; a file joined with other
-d parts is read whole as before; an unreadable file is curl's exit 26."""
import hashlib
import os
import subprocess
import time

import pytest

from conftest import free_port, run_rill, wait_for_port

BUILD = os.environ.get("RILL_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")


@pytest.fixture(scope="module")
def echo_port():
    exe = os.path.join(BUILD, "example_echo_server")
    if not os.path.exists(exe):
        pytest.skip("example_echo_server not built")
    port = free_port()
    proc = subprocess.Popen([exe, "--listen", f"127.0.0.1:{port}", "--tls-listen", "none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("up") / "big.bin"
    data = os.urandom(1 << 20) * 48  # 48 MiB
    path.write_bytes(data)
    return str(path), hashlib.sha256(data).hexdigest(), len(data)


def run_measured(args, timeout=120):
    """Runs rill with args; returns (exit code, stdout, stderr, peak RSS in KiB). The peak is the
    process's own VmHWM, read while it runs (the rusage of a child counts the Python it was forked
    from)."""
    rill = os.environ.get("RILL_BIN") or os.path.join(BUILD, "rill")
    out_path, err_path = f"/tmp/rill-upload-{os.getpid()}.out", f"/tmp/rill-upload-{os.getpid()}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as errf:  # files: -v writes a lot
        proc = subprocess.Popen([rill, *args], stdout=out, stderr=errf)
        peak, deadline = 0, time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.005)
        proc.wait(timeout=10)
    with open(out_path, "rb") as f:
        data = f.read()
    with open(err_path, "rb") as f:
        err = f.read()
    os.unlink(out_path)
    os.unlink(err_path)
    return proc.returncode, data, err, peak


@pytest.mark.parametrize("proto", [[], ["--http2-prior-knowledge"], ["--http2"]],
                         ids=["http1.1", "h2c", "h2c-upgrade"])
def test_file_body_streams_byte_identical(echo_port, big_file, proto):
    path, digest, size = big_file
    code, out, err, peak = run_measured(["get", "-s", "-v", *proto, "--data-binary", f"@{path}",
                                         f"http://127.0.0.1:{echo_port}/echo"])
    assert code == 0, err[-2000:]
    assert hashlib.sha256(out).hexdigest() == digest
    assert f"> content-length: {size}" in err.decode()  # declared, not chunked
    if "ASAN_OPTIONS" not in os.environ:  # ASan's quarantine keeps freed pieces resident
        assert 0 < peak < 24 * 1024, peak  # KiB: far below the 48 MiB body, never held whole


def test_repeats_open_the_file_again(echo_port, tmp_path):
    path = tmp_path / "b.txt"
    path.write_bytes(b"0123456789" * 1000)
    r = run_rill("get", "-s", "--http2-prior-knowledge", "-n", "3", "--data-binary", f"@{path}",
                 f"http://127.0.0.1:{echo_port}/echo")
    assert r.returncode == 0, r.stderr
    assert r.stdout == path.read_bytes() * 3


def test_a_file_joined_with_other_parts_is_read_whole(echo_port, tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"file")
    r = run_rill("get", "-s", "--data-binary", f"@{path}", "--data-binary", "tail",
                 f"http://127.0.0.1:{echo_port}/echo")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"file&tail"


def test_an_unreadable_file_is_exit_26(echo_port, tmp_path):
    r = run_rill("get", "-s", "-S", "--data-binary", f"@{tmp_path}/missing",
                 f"http://127.0.0.1:{echo_port}/echo")
    assert r.returncode == 26
    assert len(r.stderr.decode().strip().splitlines()) == 1
