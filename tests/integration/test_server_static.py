"""Static files through curl over every protocol: identical bodies, conditional requests, ranges,
HEAD, redirects, errors and precompressed siblings."""
import os
import tempfile

import pytest

from server_fixtures import SMALL, cert_path, curl, sha256

PROTOCOLS = {  # curl flags, expected %{http_version}
    "http1.1": (["--http1.1"], False, "1.1"),
    "h2c-prior-knowledge": (["--http2-prior-knowledge"], False, "2"),
    "h2c-upgrade": (["--http2"], False, "2"),
    "h2-tls": (["--http2"], True, "2"),
    "http1.1-tls": (["--http1.1"], True, "1.1"),
}


class Reply:
    def __init__(self, proc, head_file, body_file):
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        last = proc.stdout.decode().split()[-2:]  # -w prints once per URL: the last one
        self.version, code = last
        self.status = int(code)
        self.verbose = proc.stderr.decode(errors="replace")
        self.body = b""
        if os.path.exists(body_file):  # curl creates it only when a body byte arrives
            with open(body_file, "rb") as f:
                self.body = f.read()
        self.headers = {}
        with open(head_file, "rb") as f:
            blocks = f.read().decode(errors="replace").split("\r\n\r\n")
        final = [b for b in blocks if b.strip()][-1]  # after 1xx and 101 heads
        for line in final.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), value.strip())


def fetch(srv, workdir, proto, *paths_and_flags, verbose=False):
    """curl one or more URLs (paths start with '/') over proto; returns the last Reply."""
    flags, tls, _ = PROTOCOLS[proto]
    args = list(flags)
    if tls:
        args += ["--cacert", cert_path(workdir), "--resolve", f"localhost:{srv.tls_port}:127.0.0.1"]
    tmp = tempfile.mkdtemp(dir=workdir)
    head, body = os.path.join(tmp, "head"), os.path.join(tmp, "body")
    urls = [a for a in paths_and_flags if a.startswith("/")]
    extra = [a for a in paths_and_flags if not a.startswith("/")]
    for i, path in enumerate(urls):
        last = i == len(urls) - 1
        args += ["-D", head if last else os.devnull, "-o", body if last else os.devnull,
                 srv.url(path, tls)]
    args += ["-w", "%{http_version} %{http_code}\n"] + extra + (["-v"] if verbose else [])
    return Reply(curl(*args), head, body)


@pytest.fixture(scope="module")
def workdir(static_server):
    return os.path.dirname(static_server.stderr_path)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_small_file_identical(static_server, workdir, proto):
    r = fetch(static_server, workdir, proto, "/small.txt", verbose=True)
    assert r.status == 200
    assert r.version == PROTOCOLS[proto][2]
    assert r.body == SMALL
    assert r.headers["content-length"] == "5"
    if proto == "h2c-upgrade":  # the Upgrade really happened on the cleartext connection
        assert "HTTP/1.1 101 Switching Protocols" in r.verbose
        assert "upgrade: h2c" in r.verbose.lower()
    if proto == "h2-tls":
        assert "ALPN: server accepted h2" in r.verbose or "ALPN, server accepted to use h2" in r.verbose


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_big_file_identical(static_server, workdir, site, proto):
    if proto == "h2c-upgrade":
        # curl 7.88 cannot take more than 32 KiB arriving with the 101, and the server may send a
        # whole window of DATA at once: upgrade with the small file, then fetch over HTTP/2.
        r = fetch(static_server, workdir, proto, "/small.txt", "/big.bin", verbose=True)
        assert "Re-using existing connection" in r.verbose
    else:
        r = fetch(static_server, workdir, proto, "/big.bin")
    assert r.status == 200
    assert r.version == PROTOCOLS[proto][2]
    assert len(r.body) == len(site[1]["big.bin"])
    assert sha256(r.body) == sha256(site[1]["big.bin"])


BOTH = ["http1.1", "h2c-prior-knowledge"]
BOTH_NO_BODY = BOTH


@pytest.fixture
def server_for(static_server, site, tmp_path):
    """The shared server, or for HTTP/2 a private one (bodiless HTTP/2 responses once crashed the
    server: a private one keeps such a regression from taking other tests down); it must
    still exit 0 on SIGTERM."""
    from server_fixtures import start_server
    private = []

    def pick(proto):
        if proto == "http1.1":
            return static_server
        srv = start_server(os.path.dirname(static_server.stderr_path), root=site[0])
        private.append(srv)
        return srv
    yield pick
    for srv in private:
        rc = srv.stop()
        assert rc is not None and rc <= 0, srv.stderr()  # (a crash fails the test itself)


@pytest.mark.parametrize("proto", BOTH_NO_BODY)
def test_if_none_match_gives_304(server_for, workdir, proto):
    static_server = server_for(proto)
    etag = fetch(static_server, workdir, proto, "/small.txt").headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    r = fetch(static_server, workdir, proto, "/small.txt", "-H", f"If-None-Match: {etag}")
    assert r.status == 304 and r.body == b""
    assert r.headers["etag"] == etag
    r = fetch(static_server, workdir, proto, "/small.txt", "-H", 'If-None-Match: "other"')
    assert r.status == 200 and r.body == SMALL


@pytest.mark.parametrize("proto", BOTH_NO_BODY)
def test_if_modified_since_gives_304(server_for, workdir, proto):
    static_server = server_for(proto)
    lm = fetch(static_server, workdir, proto, "/small.txt").headers["last-modified"]
    r = fetch(static_server, workdir, proto, "/small.txt", "-H", f"If-Modified-Since: {lm}")
    assert r.status == 304 and r.body == b""
    r = fetch(static_server, workdir, proto, "/small.txt", "-H",
              "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT")
    assert r.status == 200 and r.body == SMALL


@pytest.mark.parametrize("proto", BOTH)
def test_single_range(static_server, workdir, site, proto):
    r = fetch(static_server, workdir, proto, "/small.txt", "-H", "Range: bytes=1-3")
    assert r.status == 206
    assert r.body == SMALL[1:4]
    assert r.headers["content-range"] == "bytes 1-3/5"
    assert r.headers["content-length"] == "3"
    big = site[1]["big.bin"]
    r = fetch(static_server, workdir, proto, "/big.bin", "-H", "Range: bytes=1000000-1999999")
    assert r.status == 206
    assert r.headers["content-range"] == f"bytes 1000000-1999999/{len(big)}"
    assert r.body == big[1000000:2000000]
    r = fetch(static_server, workdir, proto, "/big.bin", "-H", "Range: bytes=-10")
    assert r.status == 206 and r.body == big[-10:]


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_fields_before_a_long_tail_of_others_are_kept(static_server, workdir, proto):
    """A request whose fields outgrow the decoder's first buffer (60 of 200 bytes after the
    Range): the fields collected before it grew must still read right."""
    fillers = []
    for i in range(60):
        fillers += ["-H", f"x-filler-{i}: {chr(97 + i % 26) * 200}"]
    r = fetch(static_server, workdir, proto, "/small.txt", "-H", "Range: bytes=1-3", *fillers)
    assert r.status == 206
    assert r.body == SMALL[1:4]
    assert r.headers["content-range"] == "bytes 1-3/5"


@pytest.mark.parametrize("proto", BOTH)
def test_unsatisfiable_range_416(static_server, workdir, proto):
    r = fetch(static_server, workdir, proto, "/small.txt", "-H", "Range: bytes=10-20")
    assert r.status == 416
    assert r.headers["content-range"] == "bytes */5"


@pytest.mark.parametrize("proto", BOTH_NO_BODY)
def test_head_has_length_and_no_body(server_for, workdir, site, proto):
    srv = server_for(proto)
    # with -I curl writes the head where the body would go: nothing may follow it
    r = fetch(srv, workdir, proto, "/big.bin", "-I")
    assert r.status == 200
    assert r.headers["content-length"] == str(len(site[1]["big.bin"]))
    assert r.body.endswith(b"\r\n\r\n") and r.body.count(b"\r\n\r\n") == 1
    r = fetch(srv, workdir, proto, "/small.txt", "-I")
    assert r.headers["content-length"] == "5"
    assert r.body.endswith(b"\r\n\r\n") and r.body.count(b"\r\n\r\n") == 1


@pytest.mark.parametrize("proto", BOTH)
def test_directory(static_server, workdir, site, proto):
    r = fetch(static_server, workdir, proto, "/sub")
    assert r.status == 301
    assert r.headers["location"] == "/sub/"
    r = fetch(static_server, workdir, proto, "/sub?x=1")
    assert r.status == 301 and r.headers["location"] == "/sub/?x=1"
    r = fetch(static_server, workdir, proto, "/sub/")
    assert r.status == 200 and r.body == site[1]["sub/index.html"]
    r = fetch(static_server, workdir, proto, "/")
    assert r.status == 200 and r.body == site[1]["index.html"]
    assert r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("proto", BOTH)
@pytest.mark.parametrize("path,status", [
    ("/nope.txt", 404),
    ("/small.txt/", 404),
    ("/../../etc/passwd", 400),
    ("/sub/../../etc/passwd", 400),
    ("/%2e%2e/etc/passwd", 400),
    ("/.hidden", 403),
    ("/sub/../.hidden", 403),
    ("/escape", 403),
])
def test_errors(static_server, workdir, proto, path, status):
    r = fetch(static_server, workdir, proto, path, "--path-as-is")
    assert r.status == status
    assert b"secret" not in r.body and b"root:" not in r.body


@pytest.mark.parametrize("proto", BOTH)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_405(static_server, workdir, proto, method):
    r = fetch(static_server, workdir, proto, "/small.txt", "-X", method, "--data", "x")
    assert r.status == 405
    assert "GET" in r.headers["allow"]


@pytest.mark.parametrize("proto", BOTH)
def test_precompressed_gzip(static_server, workdir, site, proto):
    page, gz = site[1]["page.txt"], site[1]["page.txt.gz"]
    r = fetch(static_server, workdir, proto, "/page.txt", "-H", "Accept-Encoding: gzip, br;q=0")
    assert r.status == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in r.headers["vary"].lower()
    assert r.body == gz
    assert r.headers["content-type"].startswith("text/plain")
    r = fetch(static_server, workdir, proto, "/page.txt")
    assert r.status == 200 and r.body == page
    assert "content-encoding" not in r.headers
    assert "accept-encoding" in r.headers["vary"].lower()
    r = fetch(static_server, workdir, proto, "/page.txt", "-H", "Accept-Encoding: gzip;q=0")
    assert r.body == page
    # curl's own decoding gives the original text back
    r = fetch(static_server, workdir, proto, "/page.txt", "--compressed")
    assert r.body == page


@pytest.mark.parametrize("proto", BOTH)
def test_range_ignored_when_not_single_or_validator_differs(static_server, workdir, proto):
    """Only single ranges are served: a multi-range request, or an If-Range that no longer
    matches, gets the whole representation (a server MAY ignore Range, RFC 9110 14.2)."""
    r = fetch(static_server, workdir, proto, "/small.txt", "-H", "Range: bytes=0-1,3-4")
    assert (r.status, r.body) == (200, SMALL)
    r = fetch(static_server, workdir, proto, "/small.txt", "-H", "Range: bytes=0-1",
              "-H", 'If-Range: "not-the-etag"')
    assert (r.status, r.body) == (200, SMALL)
    etag = fetch(static_server, workdir, proto, "/small.txt").headers["etag"]
    r = fetch(static_server, workdir, proto, "/small.txt", "-H", "Range: bytes=0-1",
              "-H", f"If-Range: {etag}")
    assert (r.status, r.body) == (206, SMALL[:2])


def test_one_worker_serves_every_buffer_size_at_once(site, tmp_path):
    """One worker asked for every size of buffer its pool serves (HTTP/2 output chunks and rings,
    HTTP/1.1 file pieces, HPACK learning, an exchange's arena overflow): each answer is whole and
    the pool never runs out of size classes (with too few, an HTTP/1.1 range stalled after its
    206 head)."""
    from server_fixtures import start_server
    srv = start_server(str(tmp_path), root=site[0], tls=False, threads=1)
    try:
        big = site[1]["big.bin"]
        long_field = ["-H", "x-long: " + "a" * 3000]
        for flags in (["--http2-prior-knowledge"], ["--http1.1"]):
            for path, want, extra in (("/big.bin", big, []), ("/small.txt", SMALL, long_field),
                                      ("/big.bin", big[-10:], ["-H", "Range: bytes=-10"])):
                r = curl(*flags, *extra, srv.url(path, False))
                assert r.returncode == 0, r.stderr
                assert r.stdout == want
        assert "no class left" not in srv.stderr()
    finally:
        assert srv.stop() == 0
