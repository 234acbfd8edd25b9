"""`rill get` beyond one request: redirects (-L, --max-redirs) against Python http.server variants
that redirect and `rill serve`'s directory redirects (h2c), response heads (-D) compared byte for
byte with what curl writes for the same server, repeats (-n) on one HTTP/2 connection (nghttpd,
python3-h2), --stat lines, the progress bar (a pty for stderr, and none when it is piped), and
--http2."""
import http.server
import os
import pty
import re
import select
import shutil
import socketserver
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import RILL_BIN, free_port, run_rill, wait_for_port

BIG = os.urandom(1 << 20)


def get(*args, timeout=60):
    return run_rill("get", *args, timeout=timeout)


def curl(*args):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    return subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=60)


def start(cmd, port):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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
def docroot(tmp_path_factory):
    root = tmp_path_factory.mktemp("docroot")
    (root / "small.txt").write_bytes(b"hello\n")
    (root / "big.bin").write_bytes(BIG)
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"<p>sub</p>\n")
    return root


class RedirectServer:
    """Python's http.server, HTTP/1.1 keep-alive, heads without Date (so two clients see the same
    bytes). /go?code=C&to=LOC answers C with Location LOC and a body; /loop redirects to itself;
    any other path answers 200 with "METHOD PATH BODYLEN CONTENT-TYPE". Every request is logged
    as (method, path, body, fields by lowercase name); connections are counted. When once is set,
    the next request, whatever its path, is answered 302 with Location once."""

    def __init__(self):
        self.log, self.connections, self.once = [], 0, None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                outer.connections += 1
                super().setup()

            def log_message(self, *a):
                pass

            def answer(self, code, fields, body):
                self.send_response_only(code)
                for k, v in fields:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.log.append((self.command, self.path, body,
                                   {k.lower(): v for k, v in self.headers.items()}))
                url = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(url.query)
                if outer.once is not None:  # the next Location, for one request
                    loc, outer.once = outer.once, None
                    self.answer(302, [("Location", loc)], b"once\n")
                elif url.path == "/go" and "code" in q:
                    self.answer(int(q["code"][0]), [("Location", q["to"][0]),
                                                    ("Content-Type", "text/plain")],
                                b"redirect body\n")
                elif url.path == "/loop":
                    self.answer(302, [("Location", "/loop")], b"again\n")
                else:
                    ct = self.headers.get("Content-Type") or "-"
                    self.answer(200, [("Content-Type", "text/plain"), ("X-Path", self.path)],
                                f"{self.command} {self.path} {len(body)} {ct}".encode())

            do_GET = do_POST = do_PUT = do_HEAD = handle_any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client gone mid-answer (after --max-redirs) is no news

        self.srv = Server(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def go(self, code, to):
        return f"{self.base}/go?" + urllib.parse.urlencode({"code": code, "to": to})

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def redirector():
    srv = RedirectServer()
    yield srv
    srv.close()


@pytest.fixture
def redirector2():
    srv = RedirectServer()
    yield srv
    srv.close()


@pytest.fixture
def rill_serve(docroot):
    procs = []

    def run(*extra):
        port = free_port()
        procs.append(start([RILL_BIN, "serve", "--listen", f"127.0.0.1:{port}", "--tls-listen",
                            "none", "--root", str(docroot), *extra], port))
        return port
    yield run
    for p in procs:
        stop(p)


@pytest.fixture
def nghttpd_h2c(docroot):
    if shutil.which("nghttpd") is None:
        pytest.skip("nghttpd not installed")
    port = free_port()
    proc = start(["nghttpd", "-v", "--no-tls", "-d", str(docroot), str(port)], port)
    state = {"proc": proc}
    yield port, state
    if proc.poll() is None:
        stop(proc)


# ---- -L / --location ---------------------------------------------------------------------------

def test_without_L_the_redirect_body_is_the_output(redirector):
    r = get(redirector.go(302, "/final"))
    assert (r.returncode, r.stdout, r.stderr) == (0, b"redirect body\n", b"")
    assert [m for m, *_ in redirector.log] == ["GET"]


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_follow_each_redirect_code(redirector, code):
    r = get("-L", redirector.go(code, "/final?x=1"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"GET /final?x=1 0 -"
    assert [p for _, p, *_ in redirector.log][1:] == ["/final?x=1"]
    assert redirector.connections == 1  # the same origin: the same keep-alive connection


@pytest.mark.parametrize("loc, path", [
    ("/abs/path", "/abs/path"),
    ("rel", "/rel"),                      # beside /go
    ("a/./b/../c?q=1#frag", "/a/c?q=1"),  # dot segments gone, no fragment
    ("/x/y/../../z", "/z"),
    ("?only=query", "/go?only=query"),
    ("/with space/é", "/with%20space/%E9"),  # http.server sends the value as latin-1
    ("../../../up", "/up"),
])
def test_relative_locations(redirector, loc, path):
    r = get("-L", redirector.go(302, loc))
    assert r.returncode == 0, r.stderr
    assert redirector.log[-1][1] == path
    assert r.stdout == f"GET {path} 0 -".encode()
    c = curl("-L", redirector.go(302, loc))
    # where curl goes too (curl writes %e9, RFC 3986 prefers %E9: the same octet)
    assert c.returncode == 0
    assert re.sub("%..", lambda m: m.group(0).upper(), redirector.log[-1][1]) == path


# RFC 3986 section 5.4's examples, base http://a/b/c/d;p?q (a: the test server)
RFC3986 = [("g", "/b/c/g"), ("./g", "/b/c/g"), ("g/", "/b/c/g/"), ("/g", "/g"), ("?y", "/b/c/d;p?y"),
           ("g?y", "/b/c/g?y"), ("#s", "/b/c/d;p?q"), ("g#s", "/b/c/g"), ("g?y#s", "/b/c/g?y"),
           (";x", "/b/c/;x"), ("g;x", "/b/c/g;x"), ("g;x?y#s", "/b/c/g;x?y"), ("", "/b/c/d;p?q"),
           (".", "/b/c/"), ("./", "/b/c/"), ("..", "/b/"), ("../", "/b/"), ("../g", "/b/g"),
           ("../..", "/"), ("../../", "/"), ("../../g", "/g"),
           ("../../../g", "/g"), ("../../../../g", "/g"), ("/./g", "/g"), ("/../g", "/g"),
           ("g.", "/b/c/g."), (".g", "/b/c/.g"), ("g..", "/b/c/g.."), ("..g", "/b/c/..g"),
           ("./../g", "/b/g"), ("./g/.", "/b/c/g/"), ("g/./h", "/b/c/g/h"), ("g/../h", "/b/c/h"),
           ("g;x=1/./y", "/b/c/g;x=1/y"), ("g;x=1/../y", "/b/c/y"), ("g?y/./x", "/b/c/g?y/./x"),
           ("g?y/../x", "/b/c/g?y/../x"), ("g#s/./x", "/b/c/g"), ("g#s/../x", "/b/c/g")]


def test_rfc3986_examples(redirector):
    base = f"{redirector.base}/b/c/d;p?q"
    for loc, path in RFC3986:
        redirector.once = loc
        r = get("-L", base)
        assert r.returncode == 0, (loc, r.stderr)
        assert redirector.log[-1][1] == path, loc
        assert r.stdout == f"GET {path} 0 -".encode()


def test_absolute_and_scheme_relative_locations(redirector, redirector2):
    other = f"127.0.0.1:{redirector2.port}"
    for loc in (f"http://{other}/there", f"//{other}/there", f"HTTP://{other}/there#f"):
        r = get("-L", redirector.go(301, loc))
        assert (r.returncode, r.stdout) == (0, b"GET /there 0 -"), r.stderr
    assert [p for _, p, *_ in redirector2.log] == ["/there"] * 3


@pytest.mark.parametrize("code, method, body", [
    (301, "GET", b""), (302, "GET", b""), (303, "GET", b""),
    (307, "POST", b"a=1&b=2"), (308, "POST", b"a=1&b=2")])
def test_post_redirects_change_method_as_curl(redirector, code, method, body):
    """The same chain through curl and rill: the second request is the same."""
    url = redirector.go(code, "/after")
    r = get("-L", "-d", "a=1", "-d", "b=2", url)
    assert r.returncode == 0, r.stderr
    ours = redirector.log[1]
    assert (ours[0], ours[2]) == (method, body)
    ct = "application/x-www-form-urlencoded" if body else "-"
    assert r.stdout == f"{method} /after {len(body)} {ct}".encode()
    del redirector.log[:]
    c = curl("-L", "-d", "a=1", "-d", "b=2", url)
    assert c.returncode == 0
    assert (redirector.log[1][0], redirector.log[1][2]) == (method, body)
    assert c.stdout == r.stdout


def test_303_keeps_head(redirector):
    r = get("-L", "-I", redirector.go(303, "/h"))
    assert r.returncode == 0, r.stderr
    assert [m for m, *_ in redirector.log] == ["HEAD", "HEAD"]
    assert r.stdout.count(b"HTTP/1.1 ") == 2


def test_include_shows_every_head_like_curl(redirector):
    url = redirector.go(302, redirector.go(307, "/end"))
    r = get("-L", "-i", url)
    assert r.returncode == 0, r.stderr
    c = curl("-L", "-i", url)
    assert c.returncode == 0
    assert r.stdout == c.stdout
    assert r.stdout.startswith(b"HTTP/1.1 302 Found\r\n")
    assert r.stdout.count(b"HTTP/1.1 ") == 3
    assert r.stdout.endswith(b"\r\n\r\nGET /end 0 -")


def test_max_redirs_like_curl(redirector):
    for n in (0, 3):
        del redirector.log[:]
        r = get("-L", "--max-redirs", str(n), f"{redirector.base}/loop")
        assert r.returncode == 47
        assert r.stdout == b""
        lines = r.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and f"Maximum ({n}) redirects followed" in lines[0], lines
        ours = len(redirector.log)
        del redirector.log[:]
        c = curl("-L", "--max-redirs", str(n), f"{redirector.base}/loop")
        assert c.returncode == 47
        assert ours == len(redirector.log) == n + 1
    del redirector.log[:]
    r = get("-L", f"{redirector.base}/loop")  # the default limit: 50, as curl's
    assert r.returncode == 47 and b"Maximum (50)" in r.stderr
    assert len(redirector.log) == 51
    r = get("-sL", f"{redirector.base}/loop")
    assert (r.returncode, r.stderr) == (47, b"")


def test_cross_origin_redirects_keep_each_client(redirector, redirector2):
    """A -> B -> A: a second client for B; A's connection is used again; credentials stay with
    the origin of the URL given."""
    back = f"{redirector.base}/home"
    url = redirector.go(302, redirector2.go(307, back))
    r = get("-L", "-H", "Authorization: Bearer secret", "-H", "X-Keep: yes", url)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"GET /home 0 -"
    assert redirector.connections == 1 and redirector2.connections == 1
    assert [p for _, p, *_ in redirector.log] == [urllib.parse.urlsplit(url).path + "?" +
                                                  urllib.parse.urlsplit(url).query, "/home"]
    seen_b = redirector2.log[0][3]
    assert "authorization" not in seen_b and seen_b.get("x-keep") == "yes"
    assert redirector.log[0][3].get("authorization") == "Bearer secret"
    assert redirector.log[1][3].get("authorization") == "Bearer secret"


@pytest.mark.parametrize("loc, word", [("ftp://127.0.0.1/x", "ftp"), ("http://:80/x", "host"),
                                       ("/a\tb", "control")])
def test_redirect_to_a_bad_location_fails(redirector, loc, word):
    r = get("-L", redirector.go(302, loc))
    assert r.returncode == 1, r.stderr
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and word in lines[0], lines
    assert r.stdout == b""


def test_redirect_to_a_dead_port_fails_like_a_connection(redirector, refused_port):
    r = get("-L", redirector.go(302, f"http://127.0.0.1:{refused_port}/x"))
    assert r.returncode == 7
    assert len(r.stderr.decode().strip().splitlines()) == 1


def test_several_urls_redirected_in_order(redirector):
    urls = [redirector.go(302, f"/n{i}") for i in range(4)] + [f"{redirector.base}/plain"]
    r = get("-L", *urls)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"".join(f"GET /n{i} 0 -".encode() for i in range(4)) + b"GET /plain 0 -"


@pytest.mark.parametrize("proto", [["--http2-prior-knowledge"], ["--http1.1"]])
def test_rill_serve_directory_redirect(rill_serve, proto):
    port = rill_serve()
    url = f"http://127.0.0.1:{port}/sub"
    r = get(*proto, "-L", "-i", url)
    assert r.returncode == 0, r.stderr
    heads = re.findall(rb"^HTTP/\S+ \d+", r.stdout, re.M)
    word = b"HTTP/2" if proto == ["--http2-prior-knowledge"] else b"HTTP/1.1"
    assert heads == [word + b" 301", word + b" 200"]
    assert b"\r\nlocation: /sub/\r\n" in r.stdout
    assert r.stdout.endswith(b"\r\n\r\n<p>sub</p>\n")
    if proto == ["--http1.1"]:  # curl 7.88 cannot send a second request on an h2c connection
        c = curl(*proto, "-L", "-i", url)
        assert c.returncode == 0
        assert without_date(r.stdout) == without_date(c.stdout)
    r = get(*proto, "-L", "-v", url)
    assert r.stdout == b"<p>sub</p>\n"
    assert r.stderr.decode().count("* connected to") == 1


# ---- -D / --dump-header ------------------------------------------------------------------------

def test_dump_header_http11_same_bytes_as_curl(redirector, tmp_path):
    url = redirector.go(302, "/done")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    r = get("-L", "-D", str(ours), url)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"GET /done 0 -"
    c = curl("-L", "-D", str(theirs), "-o", os.devnull, url)
    assert c.returncode == 0
    assert ours.read_bytes() == theirs.read_bytes()
    head = ours.read_bytes()
    assert head.startswith(b"HTTP/1.1 302 Found\r\nLocation: /done\r\n")
    assert head.count(b"\r\n\r\n") == 2 and head.endswith(b"\r\n\r\n")
    assert b"HTTP/1.1 200 OK\r\n" in head


def test_dump_header_to_stdout_before_the_body(redirector):
    url = f"{redirector.base}/x"
    r = get("-D", "-", url)
    c = curl("-D", "-", url)
    assert r.returncode == 0 and c.returncode == 0
    assert r.stdout == c.stdout
    assert r.stdout.endswith(b"\r\n\r\nGET /x 0 -")


@pytest.mark.parametrize("show", [["-D", "-"], ["-i"]])
def test_fail_still_shows_the_head_like_curl(redirector, show):
    url = redirector.go(404, "/x")
    r = get("-f", *show, url)
    c = curl("-f", *show, url)
    assert r.returncode == c.returncode == 22
    assert r.stdout == c.stdout and r.stdout.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert r.stdout.endswith(b"\r\n\r\n")


def without_date(head):
    return re.sub(rb"\r\ndate: [^\r]*", b"\r\ndate: X", head)


def test_dump_header_h2_like_curl(nghttpd_h2c, tmp_path):
    port, _ = nghttpd_h2c
    url = f"http://127.0.0.1:{port}/small.txt"
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    r = get("--http2-prior-knowledge", "-D", str(ours), "-o", os.devnull, url)
    assert r.returncode == 0, r.stderr
    c = curl("--http2-prior-knowledge", "-D", str(theirs), "-o", os.devnull, url)
    assert c.returncode == 0
    assert without_date(ours.read_bytes()) == without_date(theirs.read_bytes())
    assert ours.read_bytes().startswith(b"HTTP/2 200 \r\n")


def test_dump_header_of_several_urls_in_order(redirector, tmp_path):
    urls = [f"{redirector.base}/{i}" for i in range(5)]
    out = tmp_path / "h"
    r = get("-D", str(out), *urls)
    assert r.returncode == 0, r.stderr
    assert re.findall(rb"X-Path: (/\d)", out.read_bytes()) == [f"/{i}".encode() for i in range(5)]


# ---- -n ----------------------------------------------------------------------------------------

def test_repeat_on_one_h2_connection_python_h2():
    pytest.importorskip("h2.connection")
    from server_fixtures import PythonH2Server
    srv = PythonH2Server()
    try:
        base = f"http://127.0.0.1:{srv.port}"
        r = get("--http2-prior-knowledge", "-n", "7", f"{base}/a", f"{base}/b")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"/a 0" * 7 + b"/b 0" * 7
        assert srv.connections == 1 and srv.errors == []
    finally:
        srv.close()


def test_repeat_streams_seen_by_nghttpd(nghttpd_h2c, tmp_path):
    port, state = nghttpd_h2c
    url = f"http://127.0.0.1:{port}/big.bin"
    r = get("--http2-prior-knowledge", "-n", "5", "-o", os.devnull, url)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    out = tmp_path / "five"
    r = get("--http2-prior-knowledge", "-n", "3", "-o", str(out), url)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == BIG * 3
    log = stop(state["proc"])[0].decode(errors="replace")
    streams = re.findall(r"\[id=(\d+)\] \[[^]]*\] recv HEADERS frame <length=\d+, flags=0x\w+, "
                         r"stream_id=(\d+)>", log)
    per_conn = {}
    for conn, sid in streams:
        per_conn.setdefault(conn, []).append(int(sid))
    assert sorted(len(v) for v in per_conn.values()) == [3, 5], per_conn


def test_repeat_over_http11_keep_alive(redirector):
    r = get("--max-connections", "1", "-n", "4", f"{redirector.base}/r")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"GET /r 0 -" * 4
    assert redirector.connections == 1
    # the pool: at once, on at most --max-connections keep-alive connections
    before = redirector.connections
    r = get("--max-connections", "2", "-n", "6", f"{redirector.base}/r")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"GET /r 0 -" * 6
    assert 1 <= redirector.connections - before <= 2


def test_many_repeats_stay_within_the_servers_stream_limit(rill_serve):
    """The client opens at most 100 streams before the server's SETTINGS arrive, then as many as
    they allow (rill get hands it 1000 at a time): 3000 streams sent before rill serve's SETTINGS
    made it refuse them and then end the connection (GOAWAY ENHANCE_YOUR_CALM)."""
    port = rill_serve()
    r = get("--http2-prior-knowledge", "-v", "-n", "3000", f"http://127.0.0.1:{port}/small.txt")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == b"hello\n" * 3000
    err = r.stderr.decode()
    assert err.count("* connected to") == 1 and "REFUSED_STREAM" not in err


def test_repeats_fail_in_one_line_and_a_count(refused_port):
    r = get("-n", "20", f"http://127.0.0.1:{refused_port}/x")
    assert r.returncode == 7
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 2 and "refused" in lines[0].lower(), lines
    assert lines[1].endswith(": 19 more of its requests failed"), lines


# ---- --stat ------------------------------------------------------------------------------------

STAT = re.compile(r"^stat: (\S+) (\S+) status=(\d+) proto=(\S+) bytes=(\d+) start=([\d.]+) "
                  r"dns=([\d.]+|-) connect=([\d.]+|-) first=([\d.]+|-) end=([\d.]+)$")


def stats(stderr):
    lines = stderr.decode().strip().splitlines()
    out = [STAT.match(line) for line in lines]
    assert all(out), lines
    return [m.groups() for m in out]


def test_stat_lines(rill_serve):
    port = rill_serve()
    url = f"http://localhost:{port}/big.bin"
    r = get("--http2-prior-knowledge", "--stat", "-n", "3", "-o", os.devnull, url)
    assert r.returncode == 0, r.stderr
    rows = stats(r.stderr)
    assert len(rows) == 3
    for method, u, status, proto, nbytes, start, dns, conn, first, end in rows:
        assert (method, u, status, proto, nbytes) == ("GET", url, "200", "h2", str(len(BIG)))
        # the three were made before the connection: each waited for it
        assert float(start) <= float(dns) <= float(conn) <= float(first) <= float(end)
    # a request on a connection already open: no dns, no connect
    r = get("--stat", "-L", f"http://localhost:{port}/sub")
    assert r.returncode == 0, r.stderr
    (a, b) = stats(r.stderr)
    assert (a[0], a[2], a[4], b[1], b[2]) == ("GET", "301", "6", f"http://localhost:{port}/sub/", "200")
    assert a[3] == b[3] == "http/1.1"
    assert a[6] != "-" and a[7] != "-" and (b[6], b[7]) == ("-", "-")
    assert float(a[9]) <= float(b[5]) <= float(b[8]) <= float(b[9])


def test_stat_line_of_a_failed_request(refused_port):
    url = f"http://127.0.0.1:{refused_port}/x"
    r = get("--stat", "-s", url)
    assert r.returncode == 7
    (row,) = stats(r.stderr)  # -s silences the error, not --stat
    assert row[:5] == ("GET", url, "0", "-", "0") and row[8] == "-"


def test_dump_header_to_an_unwritable_file(redirector, tmp_path):
    r = get("-D", str(tmp_path / "no" / "such" / "dir"), f"{redirector.base}/x")
    assert r.returncode == 23
    assert r.stdout == b"GET /x 0 -"
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0], lines


# ---- the progress bar --------------------------------------------------------------------------

def run_with_pty_stderr(args):
    """Runs rill get with stderr on a pty; returns (exit status, what the pty showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([RILL_BIN, "get", *args], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        exited = proc.poll() is not None  # then one last read of what is left
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed
                chunk = b""
            seen += chunk
            if chunk:
                continue
        if exited:
            break
    os.close(master)
    return proc.wait(timeout=60), seen


def test_progress_bar_only_on_a_terminal(rill_serve, tmp_path):
    port = rill_serve()
    url = f"http://127.0.0.1:{port}/big.bin"
    out = tmp_path / "o"
    rc, seen = run_with_pty_stderr(["-o", str(out), url])
    assert rc == 0, seen
    assert out.read_bytes() == BIG
    text = seen.decode()
    assert "100% [" in text and "1.0 MiB / 1.0 MiB" in text and text.endswith("\n"), text
    # no progress: stderr piped, -s, or the body on stdout
    r = get("-o", str(out), url)
    assert (r.returncode, r.stderr) == (0, b"")
    for args in (["-s", "-o", str(out), url], [url]):
        rc, seen = run_with_pty_stderr(args)
        assert (rc, seen) == (0, b"")


def test_progress_bar_leaves_messages_their_own_lines(rill_serve, tmp_path, refused_port):
    port = rill_serve()
    out = tmp_path / "o"
    rc, seen = run_with_pty_stderr(["--stat", "-o", str(out), f"http://127.0.0.1:{port}/big.bin"])
    assert rc == 0, seen
    text = seen.decode().replace("\r\n", "\n")  # the pty's line ends
    assert "100% [" in text and text.endswith("\n")
    stat = [ln for ln in text.split("\n") if "stat:" in ln]
    assert len(stat) == 1 and STAT.match(stat[0]), text  # at the start of its line
    # nothing went to a file: no bar at all, the error alone
    rc, seen = run_with_pty_stderr(["-o", str(out), f"http://127.0.0.1:{refused_port}/x"])
    assert rc == 7
    lines = seen.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rill get: ") and "B/s" not in lines[0], lines


# ---- --http2 -----------------------------------------------------------------------------------

def test_http2_flag(redirector, tmp_path):
    # http://: HTTP/1.1, as the help says (no h2c Upgrade yet)
    r = get("--http2", "-v", f"{redirector.base}/x")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"GET /x 0 -"
    assert "over http/1.1" in r.stderr.decode()
    r = get("--http2", "--http1.1", f"{redirector.base}/x")
    assert r.returncode == 2


@pytest.fixture
def nghttpd_tls(docroot, tmp_path):
    if shutil.which("nghttpd") is None:
        pytest.skip("nghttpd not installed")
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=test", "-addext",
                    "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    port = free_port()
    proc = start(["nghttpd", "-d", str(docroot), str(port), str(key), str(crt)], port)
    yield port, str(crt)
    stop(proc)


def test_http2_flag_over_tls_is_h2(nghttpd_tls):
    port, crt = nghttpd_tls
    r = get("--http2", "--cacert", crt, "-i", f"https://localhost:{port}/small.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"HTTP/2 200 \r\n") and r.stdout.endswith(b"\r\n\r\nhello\n")


def test_redirect_from_http11_to_h2_over_tls(redirector, nghttpd_tls):
    """Another origin, another scheme and another protocol: its own client, ALPN h2."""
    port, crt = nghttpd_tls
    url = redirector.go(301, f"https://localhost:{port}/small.txt")
    r = get("-L", "-v", "-i", "--cacert", crt, url)
    assert r.returncode == 0, r.stderr
    assert re.findall(rb"^HTTP/\S+ \d+", r.stdout, re.M) == [b"HTTP/1.1 301", b"HTTP/2 200"]
    assert r.stdout.endswith(b"\r\n\r\nhello\n")
    err = r.stderr.decode()
    assert "over http/1.1" in err and f"connected to localhost:{port} over h2 (TLS" in err
    r = get("-L", url)  # the certificate is checked after a redirect too
    assert r.returncode == 35 and r.stdout == b""


# ---- bad usage ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--max-redirs", "x", "http://x/"], ["--max-redirs", "-2", "http://x/"],
                                  ["-n", "0", "http://x/"], ["-n", "many", "http://x/"],
                                  ["-D", "", "http://x/"], ["-D"], ["-n"]])
def test_bad_values_exit_2(args):
    r = get(*args)
    assert r.returncode == 2
    lines = r.stderr.decode().strip().splitlines()
    assert lines and lines[0].startswith("rill get: "), lines
