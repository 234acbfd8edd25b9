"""The client resumes TLS sessions: a new connection to the same origin offers the session (TLS
1.3 ticket, TLS 1.2 ticket or id) the last one got, so the handshake skips the certificate and a
full key exchange. Checked from the server's side: a Python TLS server that closes after every
response and answers whether the handshake was resumed."""
import socket
import ssl
import subprocess
import threading

import pytest

from conftest import run_rill


class ClosingTlsServer:
    def __init__(self, tmp_path, version):
        key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                        "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.ctx.minimum_version = self.ctx.maximum_version = version
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.resumed = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                t = self.ctx.wrap_socket(c, server_side=True)
                data = b""
                while b"\r\n\r\n" not in data:
                    d = t.recv(4096)
                    if not d:
                        break
                    data += d
                self.resumed.append(t.session_reused)
                body = b"resumed\n" if t.session_reused else b"fresh\n"
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                          % len(body) + body)
                t.close()
            except (OSError, ssl.SSLError):
                c.close()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["tls1.3", "tls1.2"])
def test_new_connections_resume_the_session(tmp_path, version):
    srv = ClosingTlsServer(tmp_path, version)
    try:
        urls = [f"https://127.0.0.1:{srv.port}/{n}" for n in "abc"]
        # one connection at a time: each starts after the last one's session (a TLS 1.3 ticket
        # comes after the handshake) is known; the pool's parallel ones would not wait for it
        r = run_rill("get", "-v", "-k", "--max-connections", "1", *urls, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"fresh\nresumed\nresumed\n"  # three connections, two resumed
        assert srv.resumed == [False, True, True]
        err = r.stderr.decode()
        assert err.count("session resumed)") == 2 and err.count("* connected to") == 3
    finally:
        srv.close()


def test_a_fresh_process_starts_a_fresh_session(tmp_path):
    srv = ClosingTlsServer(tmp_path, ssl.TLSVersion.TLSv1_3)
    try:
        for _ in range(2):
            r = run_rill("get", "-k", f"https://127.0.0.1:{srv.port}/", timeout=30)
            assert r.returncode == 0 and r.stdout == b"fresh\n", r.stderr
    finally:
        srv.close()
