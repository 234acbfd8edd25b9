"""The command line: help, unknown commands and flags, the serve command's basics."""
import http.client
import re
import signal
import socket
import subprocess

from conftest import RILL_BIN, run_rill


def test_help_lists_commands():
    r = run_rill("--help")
    assert r.returncode == 0
    assert b"usage: rill" in r.stdout and b"serve" in r.stdout


def test_no_arguments_is_usage_error():
    r = run_rill()
    assert r.returncode == 2
    assert b"usage: rill" in r.stderr


def test_unknown_command_exits_2():
    r = run_rill("frobnicate")
    assert r.returncode == 2
    assert b"unknown command 'frobnicate'" in r.stderr


def test_unknown_global_flag_exits_2():
    r = run_rill("--frobnicate")
    assert r.returncode == 2
    assert b"unknown option '--frobnicate'" in r.stderr


def test_command_help():
    r = run_rill("serve", "--help")
    assert r.returncode == 0
    assert b"--listen" in r.stdout


def test_unknown_serve_flag_exits_2():
    r = run_rill("serve", "--bogus")
    assert r.returncode == 2
    assert b"unknown option '--bogus'" in r.stderr


def test_bad_listen_address_exits_2():
    r = run_rill("serve", "--listen", "nonsense")
    assert r.returncode == 2


def test_serve_answers_http11(server):
    port, proc = server()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/")
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200
    assert b"rill" in body
    assert resp.getheader("Content-Length") == str(len(body))


def test_port_0_says_the_port_bound(tmp_path):
    """--listen HOST:0 lets the kernel choose; the start-up lines name the ports bound."""
    proc = subprocess.Popen([RILL_BIN, "serve", "--listen", "127.0.0.1:0", "--tls-listen",
                             "127.0.0.1:0", "--state-dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        lines = [proc.stderr.readline().decode() for _ in range(3)]
        ports = dict(re.findall(r"rill serve: (https?)://127\.0\.0\.1:(\d+)/ ", "".join(lines)))
        assert set(ports) == {"http", "https"} and "0" not in ports.values(), lines
        with socket.create_connection(("127.0.0.1", int(ports["http"])), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert c.recv(12).startswith(b"HTTP/1.1 200")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_port_in_use_is_one_line_exit_1(server):
    """Even against another rill holding the port with SO_REUSEPORT."""
    port, _ = server()
    r = run_rill("serve", "--listen", f"127.0.0.1:{port}", "--tls-listen", "none", timeout=5)
    assert r.returncode == 1
    assert b"cannot listen" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_sigterm_stops_cleanly(server):
    port, proc = server()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


def test_ws_long_handshake_is_sent_whole(server):
    """A handshake larger than the client's stack buffer (a long sub-protocol offer) is sent, not
    silently dropped; the server picks no sub-protocol, the echo still works."""
    port, _ = server()
    r = run_rill("ws", "--http1.1", "--protocol", "p" * 4000, f"ws://127.0.0.1:{port}/ws/echo",
                 input=b"hello\n", timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello\n"


def test_ws_path_too_long_is_a_clear_error():
    r = run_rill("ws", "ws://127.0.0.1:1/" + "a" * 3000, timeout=10)
    assert r.returncode == 2
    assert b"longer than" in r.stderr and len(r.stderr.splitlines()) == 1
