"""`rill get` (and rill's client library, through tests/tools/client_stream and examples/http_get)
against servers no one here wrote, each started on free ports with a temporary configuration: h2o
(h2 over TLS, h2c, HTTP/1.1; an mruby echo), nginx (h2 over TLS, h2c, HTTP/1.1; the echo module;
a GOAWAY after 10 requests), Apache with mod_http2 (h2 over TLS, h2c by H2Direct, HTTP/1.1),
Node's http2 server (a small script below: files, an echo, trailers, 103 Early Hints, a stream
reset, a GOAWAY after some streams, small flow-control windows) and python3-h2. Bodies of 0 B,
1 MiB and 100 MiB (the last only from h2o and nginx and to Node, and not in the ASan build) byte
for byte; heads (-I, -D -) as curl shows them; 50 requests on one connection; the h2c Upgrade;
certificates. A peer missing on this machine skips its cases."""
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import RILL_BIN, free_port, run_rill

BUILD = os.environ.get("RILL_BUILD") or os.path.join(os.path.dirname(RILL_BIN))
TOOLS = os.environ.get("RILL_TOOLS") or os.path.join(BUILD, "tests")
CLIENT_STREAM = os.path.join(TOOLS, "client_stream")
HTTP_GET = os.path.join(BUILD, "example_http_get")
BIG = os.urandom(1 << 20)
SMALL = b"hello\n"
HUGE_SIZE = 100 << 20


def sanitized():
    """The ASan twin (RILL_SANITIZE=ON in the build's cache) skips the 100 MiB cases."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return re.search(r"^RILL_SANITIZE:BOOL=(ON|TRUE|1)$", f.read(), re.M) is not None
    except OSError:
        return False


ASAN = sanitized()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get(*args, timeout=60):
    return run_rill("get", *args, timeout=timeout)


def lines(stderr):
    return stderr.decode(errors="replace").strip().splitlines()


def without_date(head):
    return re.sub(rb"(?im)^date: [^\r\n]*\r\n", b"", head)


# ---- a world-readable work directory (Apache's workers run as www-data) --------------------------

@pytest.fixture(scope="module")
def work():
    d = tempfile.mkdtemp(prefix="rill-peers-")
    os.chmod(d, 0o755)
    root = os.path.join(d, "root")
    os.mkdir(root)
    for name, data in (("empty.bin", b""), ("big.bin", BIG), ("small.txt", SMALL)):
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    os.chmod(root, 0o755)
    an_hour_ago = time.time() - 3600  # Apache makes weak ETags for files changed within a second
    for name in os.listdir(root):
        os.chmod(os.path.join(root, name), 0o644)
        os.utime(os.path.join(root, name), (an_hour_ago, an_hour_ago))
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    os.chmod(key, 0o644)
    yield {"dir": d, "root": root, "key": key, "cert": crt}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def huge(work):
    """A 100 MiB file in the document root (not in the ASan build: too slow there)."""
    if ASAN:
        pytest.skip("100 MiB bodies are left to the non-sanitized run")
    path = os.path.join(work["root"], "huge.bin")
    if not os.path.exists(path):
        with open(path, "wb") as f:
            for _ in range(HUGE_SIZE >> 20):
                f.write(os.urandom(1 << 20))
        os.chmod(path, 0o644)
    return path, file_sha(path)


class Proc:
    """A server process with its output in a file; started when every port answers."""

    def __init__(self, argv, ports, log, **kw):
        self.log = log
        self.out = open(log, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT, **kw)
        deadline = time.monotonic() + 20
        for port in ports:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]} exited with {self.proc.returncode}: {self.text()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise TimeoutError(f"{argv[0]}: nothing on port {port}: {self.text()}")
                    time.sleep(0.05)

    def text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def peer(base, flags, proto, echo=False):
    return {"base": base, "flags": list(flags), "proto": proto, "echo": echo}


# ---- h2o -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def h2o(work):
    exe = shutil.which("h2o")
    if exe is None:
        pytest.skip("h2o not installed (scripts/setup.sh test)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    mruby = "mruby: YES" in version
    tls, plain = free_port(), free_port()
    d = os.path.join(work["dir"], "h2o")
    os.mkdir(d)
    echo = """      /echo:
        mruby.handler: |
          Proc.new do |env|
            body = env["rack.input"] ? env["rack.input"].read : ""
            [200, {"content-type" => "application/octet-stream"}, [body]]
          end
""" if mruby else ""
    conf = os.path.join(d, "h2o.conf")
    with open(conf, "w") as f:
        f.write(f"""user: {"root" if os.getuid() == 0 else os.environ.get("USER", "nobody")}
error-log: {d}/error.log
listen:
  host: 127.0.0.1
  port: {tls}
  ssl:
    certificate-file: {work["cert"]}
    key-file: {work["key"]}
    ocsp-update-interval: 0
listen:
  host: 127.0.0.1
  port: {plain}
hosts:
  "localhost":
    paths:
{echo}      /:
        file.dir: {work["root"]}
""")
    p = Proc([exe, "-c", conf], [tls, plain], os.path.join(d, "out.log"))
    yield {"tls": tls, "plain": plain, "echo": mruby}
    p.stop()


# ---- nginx ---------------------------------------------------------------------------------------

NGINX_ECHO = "/usr/lib/nginx/modules/ngx_http_echo_module.so"


@pytest.fixture(scope="module")
def nginx(work):
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if exe is None:
        pytest.skip("nginx not installed (scripts/setup.sh test: nginx-light)")
    tls, plain, h2c, goaway = free_port(), free_port(), free_port(), free_port()
    d = os.path.join(work["dir"], "nginx")
    os.mkdir(d)
    echo = os.path.exists(NGINX_ECHO)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process off;
{"user root;" if os.getuid() == 0 else ""}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{f"load_module {NGINX_ECHO};" if echo else ""}
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  client_max_body_size 0;
  client_body_buffer_size 2m;
  client_body_in_single_buffer on;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{tls} ssl http2;
    listen 127.0.0.1:{plain};
    listen 127.0.0.1:{h2c} http2;
    ssl_certificate {work["cert"]};
    ssl_certificate_key {work["key"]};
    root {work["root"]};
    {"location = /echo { echo_read_request_body; echo_request_body; }" if echo else ""}
  }}
  server {{
    listen 127.0.0.1:{goaway} http2;
    keepalive_requests 10;
    root {work["root"]};
  }}
}}
""")
    p = Proc([exe, "-c", conf, "-p", d], [tls, plain, h2c, goaway], os.path.join(d, "out.log"))
    yield {"tls": tls, "plain": plain, "h2c": h2c, "echo": echo, "goaway": goaway}
    p.stop()


# ---- Apache with mod_http2 -----------------------------------------------------------------------

A2_MODULES = "/usr/lib/apache2/modules"


@pytest.fixture(scope="module")
def apache(work):
    exe = shutil.which("apache2") or ("/usr/sbin/apache2" if os.path.exists("/usr/sbin/apache2") else None)
    mods = ("mpm_event", "authz_core", "mime", "ssl", "http2")
    if exe is None:
        pytest.skip("apache2 not installed (scripts/setup.sh test: apache2-bin)")
    missing = [m for m in mods if not os.path.exists(f"{A2_MODULES}/mod_{m}.so")]
    if missing:
        pytest.skip(f"apache2 modules missing: {', '.join(missing)}")
    tls, plain = free_port(), free_port()
    d = os.path.join(work["dir"], "apache")
    os.mkdir(d)
    user = "User www-data\nGroup www-data\n" if os.getuid() == 0 else ""
    loads = "".join(f"LoadModule {m}_module {A2_MODULES}/mod_{m}.so\n" for m in mods)
    types = "/etc/mime.types" if os.path.exists("/etc/mime.types") else os.devnull
    conf = os.path.join(d, "httpd.conf")
    with open(conf, "w") as f:
        f.write(f"""ServerRoot {d}
ServerName localhost
DefaultRuntimeDir {d}
PidFile {d}/httpd.pid
ErrorLog {d}/error.log
LogLevel warn
{user}{loads}TypesConfig {types}
Listen 127.0.0.1:{tls}
Listen 127.0.0.1:{plain}
DocumentRoot {work["root"]}
<Directory {work["root"]}>
  Require all granted
</Directory>
Protocols h2 h2c http/1.1
H2Direct on
<VirtualHost 127.0.0.1:{tls}>
  SSLEngine on
  SSLCertificateFile {work["cert"]}
  SSLCertificateKeyFile {work["key"]}
</VirtualHost>
""")
    p = Proc([exe, "-f", conf, "-X"], [tls, plain], os.path.join(d, "out.log"))
    yield {"tls": tls, "plain": plain}
    p.stop()


# ---- Node's http2 server -------------------------------------------------------------------------

NODE_SERVER = r"""
'use strict';
// usage: node srv.js CONFIG_JSON  -> {port, root, tls: {key, cert}|null, window, goawayAfter}
const http2 = require('node:http2');
const fs = require('node:fs');
const path = require('node:path');
const cfg = JSON.parse(process.argv[2]);
const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;
const settings = cfg.window ? { initialWindowSize: cfg.window } : {};
const opts = { settings, allowHTTP1: true };
if (cfg.tls) { opts.key = fs.readFileSync(cfg.tls.key); opts.cert = fs.readFileSync(cfg.tls.cert); }
const server = cfg.tls ? http2.createSecureServer(opts) : http2.createServer(opts);
function served(p, id, n) { process.stdout.write(`served ${p} ${id} ${n}\n`); }
server.on('stream', (stream, headers) => {
  const method = headers[':method'], p = headers[':path'];
  stream.on('error', () => {});
  const sess = stream.session;  // the GOAWAY is per connection
  sess.streams = (sess.streams || 0) + 1;
  if (sess.goingAway) return;  // above the GOAWAY's last stream id: never processed
  if (cfg.goawayAfter && sess.streams === cfg.goawayAfter) {
    sess.goingAway = true;
    stream.session.goaway(NGHTTP2_NO_ERROR, stream.id);
  }
  if (p === '/reset') { stream.close(NGHTTP2_CANCEL); return; }
  if (p === '/reset-midway') {  // promises 64 MiB, sends 1 MiB, then resets
    stream.respond({ ':status': 200, 'content-length': String(64 << 20) });
    stream.write(Buffer.alloc(1 << 20, 120), () => setTimeout(() => stream.close(NGHTTP2_CANCEL), 100));
    return;
  }
  if (p === '/echo') {
    let n = 0;
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
    stream.on('data', (c) => { n += c.length; });
    stream.on('end', () => served(p, stream.id, n));
    stream.pipe(stream);
    return;
  }
  if (p === '/hints') {
    stream.additionalHeaders({ ':status': 103, link: '</style.css>; rel=preload; as=style' });
    setTimeout(() => { stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('after the hints\n'); served(p, stream.id, 0); }, 50);
    stream.resume();
    return;
  }
  if (p === '/trailers') {
    const body = Buffer.from('a body with trailers\n');
    let sum = 0; for (const b of body) sum += b;
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': String(sum), 'x-done': 'yes' }));
    stream.end(body);
    stream.resume();
    served(p, stream.id, 0);
    return;
  }
  stream.resume();
  const file = path.join(cfg.root, path.normalize(p.split('?')[0]));
  fs.stat(file, (err, st) => {
    if (stream.destroyed) return;
    if (err || !st.isFile()) { stream.respond({ ':status': 404 }); stream.end('not found\n'); return; }
    if (method === 'HEAD') {
      stream.respond({ ':status': 200, 'content-length': st.size }, { endStream: true });
      served(p, stream.id, 0);
      return;
    }
    stream.respondWithFile(file, { 'content-length': st.size });
    stream.on('close', () => served(p, stream.id, 0));
  });
});
server.on('sessionError', () => {});
server.listen(cfg.port, '127.0.0.1', () => process.stdout.write('listening\n'));
"""


class NodeServer:
    """Node's http2 server (the script above) on a free port: files from the document root,
    POST /echo echoes, /trailers sends trailer fields, /hints a 103 before its 200, /reset resets
    the stream (CANCEL), /reset-midway resets it after 1 MiB of the 64 MiB it promised; with goaway_after=N, a GOAWAY (last stream id: the Nth stream) on every
    connection once N streams came; with window, SETTINGS_INITIAL_WINDOW_SIZE. Prints "served PATH
    STREAM BYTES" per response."""

    def __init__(self, work, tls=False, window=None, goaway_after=None):
        script = os.path.join(work["dir"], "h2_server.js")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(NODE_SERVER)
        self.port = free_port()
        cfg = {"port": self.port, "root": work["root"], "window": window,
               "goawayAfter": goaway_after,
               "tls": {"key": work["key"], "cert": work["cert"]} if tls else None}
        self.proc = Proc(["node", script, json.dumps(cfg)], [self.port],
                         os.path.join(work["dir"], f"node-{self.port}.log"))

    def served(self, path, want=None, timeout=10):
        """The "served" lines for path; waits (up to timeout) until there are want of them."""
        deadline = time.monotonic() + timeout
        while True:
            got = [ln.split() for ln in self.proc.text().splitlines() if ln.startswith("served ")]
            got = [g for g in got if g[1] == path]
            if want is None or len(got) >= want or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def stop(self):
        self.proc.stop()


def need_node():
    if shutil.which("node") is None:
        pytest.skip("node not installed (scripts/setup.sh test: nodejs)")


@pytest.fixture(scope="module")
def node_h2c(work):
    need_node()
    srv = NodeServer(work)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def node_tls(work):
    need_node()
    srv = NodeServer(work, tls=True)
    yield srv
    srv.stop()


@pytest.fixture
def node_server(work):
    need_node()
    servers = []

    def start(**kw):
        servers.append(NodeServer(work, **kw))
        return servers[-1]
    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def python_h2():
    pytest.importorskip("h2.connection")
    from server_fixtures import PythonH2Server
    srv = PythonH2Server()
    yield srv
    srv.close()


# ---- the peers, by name --------------------------------------------------------------------------

H2C = ["--http2-prior-knowledge"]


def make_peer(request, work, name):
    """(base URL, rill get flags, protocol, echo available) of one server and transport."""
    server, _, transport = name.partition("-")
    tls = ["--cacert", work["cert"]]
    if server == "h2o":
        s = request.getfixturevalue("h2o")
        return {"h2": peer(f"https://localhost:{s['tls']}", tls, "h2", s["echo"]),
                "h2c": peer(f"http://127.0.0.1:{s['plain']}", H2C, "h2", s["echo"]),
                "http1": peer(f"http://127.0.0.1:{s['plain']}", [], "http/1.1", s["echo"])}[transport]
    if server == "nginx":
        s = request.getfixturevalue("nginx")
        return {"h2": peer(f"https://localhost:{s['tls']}", tls, "h2", s["echo"]),
                "h2c": peer(f"http://127.0.0.1:{s['h2c']}", H2C, "h2", s["echo"]),
                "http1": peer(f"http://127.0.0.1:{s['plain']}", [], "http/1.1", s["echo"])}[transport]
    if server == "apache":
        s = request.getfixturevalue("apache")
        return {"h2": peer(f"https://localhost:{s['tls']}", tls, "h2"),
                "h2c": peer(f"http://127.0.0.1:{s['plain']}", H2C, "h2"),
                "http1": peer(f"http://127.0.0.1:{s['plain']}", [], "http/1.1")}[transport]
    if server == "node":
        if transport == "h2c":
            s = request.getfixturevalue("node_h2c")
            return peer(f"http://127.0.0.1:{s.port}", H2C, "h2", True)
        s = request.getfixturevalue("node_tls")
        return peer(f"https://localhost:{s.port}", tls, "h2", True)
    raise AssertionError(name)


FILE_PEERS = ["h2o-h2", "h2o-h2c", "h2o-http1", "nginx-h2", "nginx-h2c", "nginx-http1", "apache-h2",
              "apache-h2c", "apache-http1", "node-h2", "node-h2c"]
ECHO_PEERS = ["h2o-h2", "h2o-h2c", "h2o-http1", "nginx-h2", "nginx-h2c", "nginx-http1", "node-h2",
              "node-h2c"]


@pytest.fixture
def target(request, work):
    return make_peer(request, work, request.param)


# ---- GET, HEAD, -D, -n, POST ---------------------------------------------------------------------

@pytest.mark.parametrize("target", FILE_PEERS, indirect=True)
def test_get_bodies_byte_identical(target):
    """0 B, 1 MiB and a small file in one run: one HTTP/2 connection, or a keep-alive HTTP/1.1
    connection each at most (the pool); the protocol expected; bodies in order."""
    b = target["base"]
    r = get(*target["flags"], "-v", f"{b}/empty.bin", f"{b}/big.bin", f"{b}/small.txt", f"{b}/big.bin")
    assert r.returncode == 0, lines(r.stderr)[-5:]
    assert r.stdout == BIG + SMALL + BIG
    err = r.stderr.decode(errors="replace")
    if target["proto"] == "h2":
        assert err.count("* connected to") == 1, err[-2000:]
    else:
        assert 1 <= err.count("* connected to") <= 4, err[-2000:]
    assert f" over {target['proto']}" in err


@pytest.mark.parametrize("target", FILE_PEERS, indirect=True)
def test_head_shows_the_head_only(target):
    r = get(*target["flags"], "-I", f"{target['base']}/big.bin")
    assert r.returncode == 0, r.stderr
    first = b"HTTP/2 200 \r\n" if target["proto"] == "h2" else b"HTTP/1.1 200 OK\r\n"
    assert r.stdout.startswith(first), r.stdout[:200]
    assert r.stdout.endswith(b"\r\n\r\n") and r.stdout.count(b"\r\n\r\n") == 1
    length = re.search(rb"(?im)^content-length: *(\d+)\r$", r.stdout)
    if length:  # (Apache over HTTP/2 sends none for HEAD)
        assert int(length.group(1)) == len(BIG)


@pytest.mark.parametrize("target", FILE_PEERS, indirect=True)
def test_dump_header_to_stdout_like_curl(target):
    """-D - writes the head before the body: the bytes curl writes for the same response (but
    the date)."""
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    url = f"{target['base']}/small.txt"
    r = get(*target["flags"], "-D", "-", url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(b"\r\n\r\n" + SMALL)
    c = subprocess.run(["curl", "-sS", "--max-time", "50", *target["flags"], "-D", "-", url],
                       capture_output=True, timeout=60)
    assert c.returncode == 0, c.stderr
    assert without_date(r.stdout) == without_date(c.stdout)


@pytest.mark.parametrize("target", FILE_PEERS, indirect=True)
def test_fifty_requests_on_one_connection(target):
    """HTTP/2: fifty streams on one connection; HTTP/1.1: fifty requests reusing the keep-alive
    connections of the pool (6 at most), or one with --max-connections 1."""
    r = get(*target["flags"], "-v", "-n", "50", f"{target['base']}/small.txt")
    assert r.returncode == 0, lines(r.stderr)[-5:]
    assert r.stdout == SMALL * 50
    if target["proto"] == "h2":
        assert r.stderr.decode().count("* connected to") == 1
        return
    assert 1 <= r.stderr.decode().count("* connected to") <= 6
    r = get(*target["flags"], "-v", "--max-connections", "1", "-n", "50", f"{target['base']}/small.txt")
    assert r.returncode == 0, lines(r.stderr)[-5:]
    assert r.stdout == SMALL * 50
    assert r.stderr.decode().count("* connected to") == 1


@pytest.mark.parametrize("size", [0, 1 << 20], ids=["0B", "1MiB"])
@pytest.mark.parametrize("target", ECHO_PEERS, indirect=True)
def test_post_echo_byte_identical(target, size, tmp_path):
    if not target["echo"]:
        pytest.skip("this server has no echo here (h2o without mruby, nginx without its echo module)")
    body = tmp_path / "body.bin"
    body.write_bytes(BIG[:size])
    r = get(*target["flags"], "--data-binary", f"@{body}", f"{target['base']}/echo")
    assert r.returncode == 0, r.stderr
    assert r.stdout == BIG[:size]


@pytest.mark.parametrize("size", [0, 1 << 20], ids=["0B", "1MiB"])
def test_post_to_python_h2(python_h2, size, tmp_path):
    """python3-h2 checks every frame the client sends (windows, END_STREAM) and answers with the
    body's size."""
    body = tmp_path / "body.bin"
    body.write_bytes(BIG[:size])
    r = get(*H2C, "--data-binary", f"@{body}", "-n", "3", f"http://127.0.0.1:{python_h2.port}/up")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"/up {size}".encode() * 3
    assert python_h2.errors == [] and python_h2.connections == 1


def test_100_mib_get_from_h2o_over_tls(h2o, huge, work, tmp_path):
    path, digest = huge
    out = tmp_path / "out.bin"
    r = get("--cacert", work["cert"], "-o", str(out), f"https://localhost:{h2o['tls']}/huge.bin",
            timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size == HUGE_SIZE and file_sha(out) == digest


def test_100_mib_get_from_nginx_h2c(nginx, huge, tmp_path):
    path, digest = huge
    out = tmp_path / "out.bin"
    r = get(*H2C, "-o", str(out), f"http://127.0.0.1:{nginx['h2c']}/huge.bin", timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size == HUGE_SIZE and file_sha(out) == digest


@pytest.mark.parametrize("flags", [H2C, []], ids=["h2c", "h2"])
def test_100_mib_post_echoed_by_node(node_h2c, node_tls, huge, work, flags, tmp_path):
    path, digest = huge
    out = tmp_path / "out.bin"
    url = f"http://127.0.0.1:{node_h2c.port}/echo" if flags == H2C else \
        f"https://localhost:{node_tls.port}/echo"
    extra = [] if flags == H2C else ["--cacert", work["cert"]]
    r = get(*flags, *extra, "--data-binary", f"@{path}", "-o", str(out), url, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size == HUGE_SIZE and file_sha(out) == digest


# ---- Node: trailers, 103, GOAWAY, resets, flow control -------------------------------------------

def run_tool(*args, timeout=120):
    if not os.path.exists(CLIENT_STREAM):
        pytest.skip("tests/tools/client_stream not built")
    r = subprocess.run([CLIENT_STREAM, *args], capture_output=True, timeout=timeout)
    out = {}
    for line in r.stdout.decode().splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return r, out


def test_trailers_reach_the_library(node_h2c):
    r, out = run_tool(f"http://127.0.0.1:{node_h2c.port}/trailers", "--h2")
    assert r.returncode == 0, r.stderr
    body = b"a body with trailers\n"
    assert out["status"] == ["200"] and out["body_sha256"] == [sha(body)]
    assert out["trailer"] == [f"x-checksum={sum(body)}", "x-done=yes"]


def test_trailers_do_not_disturb_rill_get(node_h2c):
    r = get(*H2C, "-v", f"http://127.0.0.1:{node_h2c.port}/trailers")
    assert (r.returncode, r.stdout) == (0, b"a body with trailers\n"), r.stderr
    frames = [ln for ln in lines(r.stderr) if ln.startswith("* recv ") and "stream=1 " in ln]
    # the trailer section is the last frame of the stream: HEADERS with END_STREAM|END_HEADERS
    assert frames[-1].startswith("* recv HEADERS stream=1 ") and frames[-1].endswith("flags=0x05")


@pytest.mark.parametrize("show", [["-i"], ["-D", "-", "-o", os.devnull]], ids=["i", "D"])
def test_trailers_shown_like_curl(node_h2c, show):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    url = f"http://127.0.0.1:{node_h2c.port}/trailers"
    c = subprocess.run(["curl", "-sS", *H2C, *show, url], capture_output=True, timeout=60)
    assert c.returncode == 0 and b"x-checksum: " in c.stdout
    r = get(*H2C, *show, url)
    assert r.returncode == 0
    assert without_date(r.stdout) == without_date(c.stdout)


def test_early_hints_reach_the_library(node_h2c):
    r, out = run_tool(f"http://127.0.0.1:{node_h2c.port}/hints", "--h2")
    assert r.returncode == 0, r.stderr
    assert len(out["informational"]) == 1
    assert out["informational"][0] == "103 link=</style.css>; rel=preload; as=style"
    assert out["status"] == ["200"] and out["body_sha256"] == [sha(b"after the hints\n")]


def test_early_hints_then_the_answer_with_rill_get(node_h2c):
    r = get(*H2C, "-i", f"http://127.0.0.1:{node_h2c.port}/hints")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(b"\r\n\r\nafter the hints\n")
    assert re.findall(rb"(?m)^HTTP/2 (\d+)", r.stdout)[-1] == b"200"


def test_early_hints_shown_like_curl(node_h2c):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    url = f"http://127.0.0.1:{node_h2c.port}/hints"
    c = subprocess.run(["curl", "-sS", *H2C, "-i", url], capture_output=True, timeout=60)
    assert c.returncode == 0 and c.stdout.startswith(b"HTTP/2 103 \r\nlink: ")
    r = get(*H2C, "-i", url)
    assert r.returncode == 0
    assert without_date(r.stdout) == without_date(c.stdout)


def test_goaway_mid_way_loses_and_repeats_no_get(node_server):
    """Node sends GOAWAY (last stream: the 10th) on each connection after 10 streams: the GETs
    above it are idempotent, go again on new connections, and each of the 50 is answered once."""
    srv = node_server(goaway_after=10)
    r = get(*H2C, "-v", "-n", "50", f"http://127.0.0.1:{srv.port}/small.txt", timeout=120)
    assert r.returncode == 0, lines(r.stderr)[-5:]
    assert r.stdout == SMALL * 50
    assert r.stderr.decode().count("* connected to") >= 5  # 10 streams a connection
    served = srv.served("/small.txt", want=50)
    assert len(served) == 50
    time.sleep(0.5)
    assert len(srv.served("/small.txt")) == 50  # and no more: none answered twice


def test_goaway_from_nginx_after_ten_requests(nginx):
    """nginx (keepalive_requests 10) ends each h2c connection with GOAWAY after 10 streams: the
    other GETs of the 50 go again on new connections, every body arrives once, in order."""
    r = get(*H2C, "-v", "-n", "50", f"http://127.0.0.1:{nginx['goaway']}/small.txt", timeout=120)
    assert r.returncode == 0, lines(r.stderr)[-5:]
    assert r.stdout == SMALL * 50
    err = r.stderr.decode()
    assert err.count("* recv GOAWAY stream=0 ") >= 4 and err.count("* connected to") >= 5


def test_goaway_mid_way_posts_fail_and_say_how_many(node_server):
    """POSTs above the GOAWAY's last stream are not sent again (not idempotent): the exit status
    says HTTP/2 error, stderr says how many failed, and what Node answered is all on stdout."""
    srv = node_server(goaway_after=10)
    r = get(*H2C, "-n", "50", "--data-binary", "abc", f"http://127.0.0.1:{srv.port}/echo", timeout=120)
    assert r.returncode == 16, r.stderr
    err = lines(r.stderr)
    assert len(err) == 2, err
    assert "the server refused the request (GOAWAY)" in err[0]
    m = re.search(r": (\d+) more of its requests failed$", err[1])
    assert m, err
    failed = int(m.group(1)) + 1
    answered = srv.served("/echo", want=50 - failed)
    assert len(answered) == 10 and failed == 40
    assert all(n == "3" for _, _, _, n in answered)
    assert r.stdout == b"abc" * len(answered)


def test_stream_reset_by_the_server(node_h2c):
    url = f"http://127.0.0.1:{node_h2c.port}"
    r = get(*H2C, f"{url}/reset")
    assert (r.returncode, r.stdout) == (16, b"")
    err = lines(r.stderr)
    assert len(err) == 1 and "reset the stream (CANCEL)" in err[0], err
    # the connection lives on: a request beside the reset one is answered
    r = get(*H2C, "-v", f"{url}/reset", f"{url}/small.txt")
    assert (r.returncode, r.stdout) == (16, SMALL)
    assert r.stderr.decode().count("* connected to") == 1


def test_stream_reset_midway_through_a_large_body(node_h2c):
    """rill get waits for a large body in batches (SO_RCVLOWAT, src/io/read_batch.c); a server
    that resets the stream after 1 MiB of the 64 MiB it promised sends far less than a batch: the
    reset is still seen at once, not at a timeout."""
    start = time.monotonic()
    r = get(*H2C, f"http://127.0.0.1:{node_h2c.port}/reset-midway", timeout=20)
    assert time.monotonic() - start < 5
    assert (r.returncode, len(r.stdout)) == (16, 1 << 20), r.stderr
    err = lines(r.stderr)
    assert len(err) == 1 and "the server reset the stream" in err[0], err


@pytest.mark.parametrize("window", [1000, 16384])
def test_small_flow_control_window(node_server, window, tmp_path):
    """Node announces SETTINGS_INITIAL_WINDOW_SIZE=window: the 1 MiB body goes in pieces as its
    WINDOW_UPDATEs allow (the first 64 KiB before its SETTINGS), and comes back whole."""
    srv = node_server(window=window)
    body = tmp_path / "body.bin"
    body.write_bytes(BIG)
    r = get(*H2C, "--data-binary", f"@{body}", f"http://127.0.0.1:{srv.port}/echo", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == BIG


def test_tiny_flow_control_window(node_server, tmp_path):
    """A window of 100 bytes: the server can only credit our DATA 100 bytes at a time, thousands
    of WINDOW_UPDATEs below 128 that a client must not take for a flood."""
    srv = node_server(window=100)
    body = tmp_path / "body.bin"
    body.write_bytes(BIG)
    r = get(*H2C, "--data-binary", f"@{body}", f"http://127.0.0.1:{srv.port}/echo", timeout=240)
    assert r.returncode == 0, r.stderr
    assert r.stdout == BIG


# ---- certificates --------------------------------------------------------------------------------

@pytest.mark.parametrize("server", ["h2o", "nginx", "apache", "node"])
def test_self_signed_certificate_refused_without_k(request, work, server):
    """Exit 35 for a certificate that does not verify (rill get --help: TLS failure; curl says 60
    for this one), one line; -k or --cacert take it."""
    if server == "node":
        need_node()
        port = request.getfixturevalue("node_tls").port
    else:
        port = request.getfixturevalue(server)["tls"]
    url = f"https://localhost:{port}/small.txt"
    r = get(url)
    assert (r.returncode, r.stdout) == (35, b"")
    err = lines(r.stderr)
    assert len(err) == 1 and "certificate" in err[0], err
    for ok in (["-k"], ["--cacert", work["cert"]]):
        r = get(*ok, url)
        assert (r.returncode, r.stdout) == (0, SMALL), r.stderr


# ---- --http2 on http:// against a server that only speaks HTTP/1.1 -------------------------------

@pytest.fixture
def plain_http11(work):
    """Python's http.server (HTTP/1.1 keep-alive): ignores any Upgrade; records request fields."""
    seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *a, **kw):
            super().__init__(*a, directory=work["root"], **kw)

        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append({k.lower(): v for k, v in self.headers.items()})
            super().do_GET()

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()


def test_http2_flag_on_a_server_that_declines(plain_http11):
    port, seen = plain_http11
    base = f"http://127.0.0.1:{port}"
    r = get("--http2", "-v", "-i", f"{base}/small.txt", f"{base}/big.bin")
    assert r.returncode == 0, r.stderr
    head, body = r.stdout.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.0 200 OK\r\n") or head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body.startswith(SMALL) and body.endswith(BIG)
    assert "over http/1.1" in r.stderr.decode()
    assert len(seen) == 2
    for fields in seen:  # an h2c Upgrade, if one is ever offered, is the whole offer
        if "upgrade" in fields:
            assert fields["upgrade"] == "h2c" and "http2-settings" in fields


# ---- examples/http_get ---------------------------------------------------------------------------

def run_example(*args, timeout=120):
    if not os.path.exists(HTTP_GET):
        pytest.skip("examples/http_get not built")
    return subprocess.run([HTTP_GET, *args], capture_output=True, timeout=timeout)


@pytest.fixture
def rill_served(work, tmp_path):
    from server_fixtures import start_server
    srv = start_server(str(tmp_path), root=work["root"])
    yield srv
    assert srv.stop() == 0, srv.stderr()


def test_example_http_get_over_h2_tls(rill_served):
    r = run_example("-k", f"https://localhost:{rill_served.tls_port}/big.bin", "5")
    assert r.returncode == 0, r.stderr
    assert r.stdout == BIG * 5
    assert lines(r.stderr) == [f"200 h2 {len(BIG)} bytes"] * 5


@pytest.mark.parametrize("flags,proto", [(["--h2c"], "h2"), ([], "http/1.1")])
def test_example_http_get_cleartext(rill_served, flags, proto):
    r = run_example(*flags, f"http://127.0.0.1:{rill_served.port}/small.txt", "20")
    assert r.returncode == 0, r.stderr
    assert r.stdout == SMALL * 20
    assert lines(r.stderr) == [f"200 {proto} {len(SMALL)} bytes"] * 20


def test_example_http_get_against_h2o(h2o):
    r = run_example("--h2c", f"http://127.0.0.1:{h2o['plain']}/big.bin", "8")
    assert r.returncode == 0, r.stderr
    assert r.stdout == BIG * 8


def test_example_http_get_failures(rill_served, refused_port):
    r = run_example(f"http://127.0.0.1:{rill_served.port}/missing")
    assert (r.returncode, r.stdout) == (1, b"")
    assert lines(r.stderr)[0].startswith("404 ")
    r = run_example(f"http://127.0.0.1:{refused_port}/x")
    assert (r.returncode, r.stdout) == (1, b"")
    err = lines(r.stderr)
    assert len(err) == 1 and "refused" in err[0].lower(), err
    r = run_example(f"https://localhost:{rill_served.tls_port}/small.txt")  # not verified: refused
    assert (r.returncode, r.stdout) == (1, b"")
    assert "certificate" in r.stderr.decode()
    r = run_example("ftp://x/")
    assert r.returncode == 2


@pytest.mark.parametrize("server,proto", [("h2o", "h2"), ("nginx", "http/1.1")])
def test_http2_flag_upgrade_with_real_servers(request, server, proto):
    """--http2 on http:// offers the h2c Upgrade with the first request: h2o takes it, nginx (no
    h2c Upgrade) answers over HTTP/1.1; h2o's bodies arrive on one connection, nginx's on that
    one and, once it declined, on the pool's others (4 at most).
    (Not Apache: 2.4.71's mod_http2 under the event MPM, once it has answered the upgraded request
    and the client's preface has not arrived yet, sends GOAWAY 'timeout' (last stream 1) at once,
    or closes with stream 1 cut when its window is used up; curl --http2 fails against it too.)"""
    port = request.getfixturevalue(server)["plain"]
    base = f"http://127.0.0.1:{port}"
    r = get("--http2", "-v", f"{base}/small.txt", f"{base}/big.bin", f"{base}/empty.bin",
            f"{base}/big.bin")
    assert r.returncode == 0, lines(r.stderr)[-5:]
    assert r.stdout == SMALL + BIG + BIG
    err = r.stderr.decode(errors="replace")
    if proto == "h2":
        assert err.count("* connected to") == 1, err[-2000:]
    else:
        assert 1 <= err.count("* connected to") <= 4, err[-2000:]
    if proto == "h2":
        assert "recv HEADERS stream=3 " in err  # the second request: a stream of the upgraded connection
    else:
        assert "recv HEADERS" not in err
