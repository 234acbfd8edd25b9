"""Shared fixtures: the rill binary and a running server on a free loopback port."""
import os
import socket
import subprocess
import time

import pytest

RILL_BIN = os.environ.get("RILL_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "rill")
SHARED = os.environ.get("RILL_SHARED") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}: "
                               f"{proc.stderr.read().decode(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")


def run_rill(*args, timeout=30, input=None):
    return subprocess.run([RILL_BIN, *args], capture_output=True, timeout=timeout, input=input)


@pytest.fixture
def rill_bin():
    return RILL_BIN


@pytest.fixture
def server():
    """Starts `rill serve` on a free port; yields (port, process); stops it with SIGTERM."""
    procs = []

    def start(*extra):
        port = free_port()
        proc = subprocess.Popen([RILL_BIN, "serve", "--listen", f"127.0.0.1:{port}", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        wait_for_port(port, proc)
        return port, proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
