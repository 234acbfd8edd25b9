"""Active health checks of the proxy's backends (`health-check:` in --config, docs/PROXY.md): a
backend whose probe fails leaves the rotation and comes back once it passes; a route with no
backend left answers 503 at once; a probe that hangs is timed out; probes over HTTP/1.1 and
HTTP/2 (h2c) as the backend's scheme says; a reload that changes them. Short intervals drive it."""
import os
import signal
import socket
import subprocess
import threading

import pytest

from server_fixtures import curl, start_server
from test_proxy import Recorder, head_fields
from test_proxy_config import reload, wait_for, write


class Backend(Recorder):
    """A raw HTTP/1.1 backend whose check path answers 200 while `healthy`, 503 otherwise (or
    nothing at all while `hang`); any other path answers its name."""

    def __init__(self, name):
        self.name = name.encode()
        self.healthy = True
        self.hang = False
        super().__init__(self.answer)

    def answer(self, head, body):
        if head.split(b" ")[1] == b"/healthz":
            if self.hang:
                return None
            if self.healthy:
                return b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            return b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nsick"
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(self.name), self.name)

    def served(self):
        """Requests other than the probes."""
        with self.lock:
            return [h for h, _ in self.requests if h.split(b" ")[1] != b"/healthz"]

    def probes(self):
        with self.lock:
            return [h for h, _ in self.requests if h.split(b" ")[1] == b"/healthz"]


@pytest.fixture
def backends():
    made = []

    def make(name):
        b = Backend(name)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(text, threads=2):
        path = write(tmp_path / "rill.yaml", text)
        s = start_server(str(tmp_path), tls=False, extra=("--config", path), threads=threads)
        s.config = path
        servers.append(s)
        return s

    yield start
    for s in servers:
        assert s.stop() == 0, s.stderr()


def get(s, path):
    r = curl(s.url(path), "-w", "\n%{http_code}")
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code), body


CHECK = "{path: /healthz, interval: 50ms, timeout: 2s, fails: 2, passes: 2}"


def test_failing_backend_leaves_the_rotation_and_comes_back(serve, backends):
    a, b = backends("a"), backends("b")
    s = serve(f"""routes:
  - prefix: /
    backends: [{a.url()}, {b.url()}]
    health-check: {CHECK}
""")
    wait_for(lambda: a.probes() and b.probes(), "the first probes")
    # The probes are plain HTTP/1.1 GETs of the path, named as such.
    line, fields = head_fields(a.probes()[0])
    fields = dict(fields)
    assert line == b"GET /healthz HTTP/1.1"
    assert fields[b"user-agent"] == b"rill-health-check"
    assert {get(s, f"/x{i}")[1] for i in range(4)} == {b"a", b"b"}

    a.healthy = False
    wait_for(lambda: f"{a.url()} is down" in s.stderr(), "a taken out")
    assert (f"{a.url()} is down (health check GET /healthz: status 503; 2 times in a row)"
            in s.stderr()), s.stderr()
    before = len(a.served())
    assert [get(s, f"/y{i}") for i in range(10)] == [(200, b"b")] * 10
    assert len(a.served()) == before
    probes = len(a.probes())
    wait_for(lambda: len(a.probes()) > probes, "a still probed while out")

    a.healthy = True
    wait_for(lambda: f"{a.url()} is up again" in s.stderr(), "a back")
    assert f"{a.url()} is up again (health check GET /healthz passed 2 times in a row)" in s.stderr()
    assert {get(s, f"/z{i}")[1] for i in range(4)} == {b"a", b"b"}
    assert s.stderr().count("is down") == 1 and s.stderr().count("is up again") == 1


def test_route_with_no_backend_left_answers_503_at_once_with_one_line(serve, backends,
                                                                     refused_port):
    sick, other = backends("sick"), backends("other")
    dead = refused_port  # nothing listens: the probe cannot connect
    sick.healthy = False
    s = serve(f"""proxy:
  health-check: {CHECK}
routes:
  - prefix: /app
    backends: [{sick.url()}, http://127.0.0.1:{dead}]
  - prefix: /other
    backends: {other.url()}
  - prefix: /unchecked
    backends: {sick.url()}
    health-check: none
""")
    wait_for(lambda: "no backend of the route /app passes" in s.stderr(), "the route's line")
    assert f"http://127.0.0.1:{dead} is down (health check GET /healthz: " in s.stderr()
    for i in range(5):
        code, body = get(s, f"/app/{i}")
        assert code == 503 and b"health checks" in body
    # over HTTP/2 as well, and a WebSocket's handshake
    r = curl(s.url("/app/h2"), "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == b"503"
    r = curl(s.url("/app/ws"), "-H", "connection: upgrade", "-H", "upgrade: websocket",
             "-H", "sec-websocket-version: 13", "-H", "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
             "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == b"503"
    assert sick.served() == []  # nothing tried
    # one line for the route, none per request; the other routes go on
    assert s.stderr().count("no backend of the route /app passes") == 1, s.stderr()
    assert [l for l in s.stderr().splitlines() if "cannot connect" in l] == [
        l for l in s.stderr().splitlines() if f"127.0.0.1:{dead} is down" in l]
    assert get(s, "/other/x") == (200, b"other")
    assert get(s, "/unchecked/x") == (200, b"sick")  # the same backend, without checks


def test_probe_that_hangs_is_timed_out(serve, backends):
    hung, fine = backends("hung"), backends("fine")
    hung.hang = True
    s = serve(f"""routes:
  - prefix: /
    backends: [{hung.url()}, {fine.url()}]
    health-check: {{path: /healthz, interval: 50ms, timeout: 150ms, fails: 1, passes: 1}}
""")
    wait_for(lambda: f"{hung.url()} is down" in s.stderr(), "the hung one out")
    assert (f"{hung.url()} is down (health check GET /healthz: no answer within 150 ms; "
            "1 time in a row)" in s.stderr()), s.stderr()
    assert [get(s, f"/{i}") for i in range(4)] == [(200, b"fine")] * 4
    # each timed-out probe closed its connection: the next one came on a new one
    wait_for(lambda: len(hung.conns) >= 2, "a new connection for the next probe")
    hung.hang = False
    wait_for(lambda: f"{hung.url()} is up again" in s.stderr(), "the hung one back")


def test_probes_to_an_h2c_backend_go_over_http2(serve, tmp_path):
    """Another rill serve as the h2c backend: its access log shows the probes' protocol."""
    work = tmp_path / "backend"
    work.mkdir()
    (work / "root").mkdir()
    (work / "root" / "healthz").write_text("ok\n")
    log = str(work / "access.log")
    be = start_server(str(work), root=str(work / "root"), tls=False, access_log=log, threads=1)
    try:
        s = serve(f"""routes:
  - prefix: /
    backends: h2c://127.0.0.1:{be.port}
    health-check: {{path: /healthz, interval: 50ms, timeout: 2s, fails: 1, passes: 1}}
""")

        def lines():
            with open(log) as f:
                return f.read().splitlines()
        wait_for(lambda: any('"GET /healthz HTTP/2" 200' in l and "rill-health-check" in l
                             for l in lines()), "an HTTP/2 probe")
        assert get(s, "/healthz") == (200, b"ok\n")
        # a check path the backend does not have: 404, out
        reload(s, f"""routes:
  - prefix: /
    backends: h2c://127.0.0.1:{be.port}
    health-check: {{path: /missing, interval: 50ms, timeout: 2s, fails: 1, passes: 1}}
""")
        wait_for(lambda: "is down (health check GET /missing: status 404" in s.stderr(),
                 "the backend out after the reload")
        assert get(s, "/healthz")[0] == 503
        # the old check's probes stopped with the reload (counted once the new ones came: the
        # backend's log is written in order)
        wait_for(lambda: any('"GET /missing HTTP/2"' in l for l in lines()), "a new probe logged")
        old = sum('"GET /healthz HTTP/2"' in l and "rill-health-check" in l for l in lines())
        news = sum('"GET /missing HTTP/2"' in l for l in lines())
        wait_for(lambda: sum('"GET /missing HTTP/2"' in l for l in lines()) > news + 2,
                 "more probes of the new path")
        assert sum('"GET /healthz HTTP/2"' in l and "rill-health-check" in l
                   for l in lines()) == old
        # and a reload without checks: back in the rotation, no more probes
        reload(s, f"routes:\n  - prefix: /\n    backends: h2c://127.0.0.1:{be.port}\n")
        assert get(s, "/healthz") == (200, b"ok\n")
    finally:
        assert be.stop() == 0, be.stderr()


def test_probes_to_an_https_backend_take_h2_by_alpn(serve, tmp_path):
    """Another rill serve over TLS (its self-signed certificate: `insecure`): the probes arrive
    over HTTP/2, chosen by ALPN; a check path it does not have takes it out."""
    work = tmp_path / "backend"
    work.mkdir()
    (work / "root").mkdir()
    (work / "root" / "healthz").write_text("ok\n")
    log = str(work / "access.log")
    be = start_server(str(work), root=str(work / "root"), access_log=log, threads=1)
    try:
        s = serve(f"""proxy:
  insecure: true
routes:
  - prefix: /up
    backends: https://localhost:{be.tls_port}
    health-check: {{path: /healthz, interval: 50ms, timeout: 2s, fails: 1, passes: 1}}
  - prefix: /
    backends: https://127.0.0.1:{be.tls_port}
    health-check: {{path: /missing, interval: 50ms, timeout: 2s, fails: 1, passes: 1}}
""")

        def lines():
            with open(log) as f:
                return f.read().splitlines()
        wait_for(lambda: any('"GET /healthz HTTP/2" 200' in l and "rill-health-check" in l
                             for l in lines()), "an HTTP/2 probe over TLS")
        wait_for(lambda: f"https://127.0.0.1:{be.tls_port} is down (health check GET /missing: "
                 "status 404" in s.stderr(), "the other one out")
        assert get(s, "/up/healthz")[0] == 404  # /up/healthz is not a file there: the backend said
        assert get(s, "/x")[0] == 503
        assert f"https://localhost:{be.tls_port} is down" not in s.stderr()
    finally:
        assert be.stop() == 0, be.stderr()
