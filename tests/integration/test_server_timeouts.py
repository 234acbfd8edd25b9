"""Timers of the HTTP/1.1 side: a request head must arrive in time (slowloris)."""
import socket
import subprocess
import time

from conftest import RILL_BIN, free_port, wait_for_port


def test_slow_request_head_gets_408_and_close():
    port = free_port()
    proc = subprocess.Popen([RILL_BIN, "serve", "--listen", f"127.0.0.1:{port}", "--tls-listen",
                             "none", "--header-timeout", "400"], stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        start = time.monotonic()
        answer = slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert 0.3 < time.monotonic() - start < 3
        assert b"connection: close" in answer.lower()
        assert slow.recv(4096) in (b"", answer[len(answer):])  # then the connection ends
        # a keep-alive connection idle between requests is not cut by the head timer
        ok = socket.create_connection(("127.0.0.1", port), timeout=5)
        ok.sendall(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ok.recv(4096).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.8)
        ok.sendall(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ok.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
