"""Chromium through the proxy: a page fetched over h2 (TLS, rill's self-signed certificate) from a
Node backend behind `rill serve --proxy`, then a WebSocket from that page on the same h2
connection (an RFC 8441 extended CONNECT stream) that the proxy passes on to the backend as an
HTTP/1.1 Upgrade (Node's `ws`), permessage-deflate negotiated end to end."""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from server_fixtures import start_server

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_PATH = "/usr/share/nodejs"  # Debian's node-ws lives here; Node does not look there itself


class PageBackend:
    """tests/integration/ws_page_backend.js: the page at /app/, the echoing WebSocket at
    /app/ws; what it saw comes back as JSON lines (self.seen)."""

    def __init__(self):
        env = {**os.environ, "NODE_PATH": NODE_PATH}
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "ws_page_backend.js")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(self.proc.stderr.read().decode(errors="replace"))
        self.port = int(line)
        self.seen = []
        self.lock = threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.seen.append(json.loads(line))

    def of(self, kind):
        with self.lock:
            return [s for s in self.seen if s["kind"] == kind]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def chromium():
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed (make test installs Debian's chromium)")
    from chromium_cdp import Chromium
    browser = Chromium()
    yield browser
    browser.close()


@pytest.fixture
def backend():
    be = PageBackend()
    yield be
    be.stop()


@pytest.fixture
def proxy(tmp_path, backend):
    """rill serve over TLS with /app proxied to the backend; the demo keeps the rest (its
    /api/stats counts the server's open connections and streams)."""
    log = str(tmp_path / "access.log")
    s = start_server(str(tmp_path), access_log=log,
                     extra=("--proxy", f"/app=http://127.0.0.1:{backend.port}"))
    yield s
    assert s.stop() == 0, s.stderr()


# Runs in the page the proxy served. The WebSocket's URL is the page's own origin, so Chromium
# puts it on the page's HTTP/2 connection when the server allows extended CONNECT. rill's demo
# page (`/`, beside the proxied /app) says which connection and stream it came on (rill's own
# word, not the browser's): fetched before the WebSocket opens and again while it is open, it
# shows the streams opened on that connection in between. The demo's /api/stats counts the
# server's open streams.
PAGE_SCRIPT = r"""
(async () => {
  const r = {};
  r.pageProtocol = performance.getEntriesByType('navigation')[0].nextHopProtocol;
  r.pageText = document.getElementById('origin') ? document.getElementById('origin').textContent : null;
  const where = async () => {
    const t = await (await fetch('/', {cache: 'no-store'})).text();
    const m = t.match(/id="connection-id">([^<]*)<\/span>, stream (\d+)\)/);
    return {connection: m[1], stream: Number(m[2])};
  };
  r.before = await where();
  const ws = new WebSocket('wss://' + location.host + '/app/ws');
  ws.binaryType = 'arraybuffer';
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('websocket failed')); });
  r.extensions = ws.extensions;
  const next = () => new Promise((res) => { ws.onmessage = (e) => res(e.data); });
  const bytes = (buf) => new Uint8Array(buf);
  const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  const prefix = new TextEncoder().encode('ws:');

  let p = next(); ws.send('hello'); r.small = await p;
  let big = ''; for (let i = 0; big.length < 120000; i++) big += 'line ' + i + ' ' + Math.random() + '\n';
  p = next(); ws.send(big); r.bigText = (await p) === 'ws:' + big; r.bigTextLength = big.length;
  const bin = new Uint8Array(200 * 1024); for (let i = 0; i < bin.length; i++) bin[i] = (i * 7919 + (i >> 9)) & 255;
  p = next(); ws.send(bin); let got = bytes(await p);
  r.binary = same(got.subarray(0, 3), prefix) && same(got.subarray(3), bin); r.binaryLength = bin.length;

  r.during = await where();
  const stats = await fetch('/api/stats', {cache: 'no-store'});
  r.stats = await stats.json();
  r.statsProtocol = performance.getEntriesByName(stats.url)[0].nextHopProtocol;
  ws.close(1000);
  await new Promise((res) => { ws.onclose = res; });
  return r;
})()
"""


def wait_for(cond, timeout=10):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def access_lines(s):
    with open(s.access_log) as f:
        return f.read().splitlines()


def test_chromium_page_and_websocket_through_the_proxy_on_one_h2_connection(chromium, proxy,
                                                                            backend):
    r = chromium.run(f"https://127.0.0.1:{proxy.tls_port}/app/", PAGE_SCRIPT)

    # The page came from the backend, through the proxy, over h2.
    assert r["pageText"] == "served by the node backend"
    assert r["pageProtocol"] == "h2" and r["statsProtocol"] == "h2"
    page = [q for q in backend.of("request") if q["url"] == "/app/"]
    assert len(page) == 1 and page[0]["version"] == "1.1"
    assert page[0]["headers"]["via"] == "2 rill"

    # One connection, as rill numbers them, carried stream 1 (the page), 3 (the demo page before
    # the WebSocket), 5 (the WebSocket's extended CONNECT) and 7 (the demo page again, while the
    # WebSocket was open): the WebSocket was the only stream opened between them on the
    # page's connection. (With --no-connect-protocol Chromium opens another connection for it
    # and the second look says stream 5.) While it was open the server had two streams open:
    # the WebSocket's and the stats request's.
    assert r["before"]["connection"] == r["during"]["connection"], (r["before"], r["during"])
    assert (r["before"]["stream"], r["during"]["stream"]) == (3, 7), (r["before"], r["during"])
    assert r["stats"]["streams"] == 2, r["stats"]

    # The backend got an HTTP/1.1 Upgrade carrying the browser's own permessage-deflate offer,
    # made from the extended CONNECT (via says the front was HTTP/2), and accepted it; the
    # browser reports the extension, so the backend's answer reached it.
    ws = backend.of("websocket")
    assert len(ws) == 1
    ws = ws[0]
    assert ws["method"] == "GET" and ws["version"] == "1.1" and ws["headers"]["via"] == "2 rill"
    assert ws["headers"]["upgrade"].lower() == "websocket"
    offer = ws["headers"]["sec-websocket-extensions"]
    assert offer.startswith("permessage-deflate") and "client_max_window_bits" in offer, offer
    assert "permessage-deflate" in ws["extensions"]
    assert any(a.lower().startswith("sec-websocket-extensions: permessage-deflate")
               for a in ws["answer"]), ws["answer"]
    assert r["extensions"].startswith("permessage-deflate"), r["extensions"]

    # Echoes both ways, text and binary, two of them larger than 64 KiB.
    assert r["small"] == "ws:hello" and r["bigText"] and r["binary"]
    msgs = backend.of("message")
    assert [(m["binary"], m["length"]) for m in msgs] == [
        (False, 5), (False, r["bigTextLength"]), (True, r["binaryLength"])]

    # The proxy's access log: the page's GET and the WebSocket's extended CONNECT, both HTTP/2,
    # both naming the backend.
    be = f"backend=http://127.0.0.1:{backend.port}"
    def logged():
        lines = access_lines(proxy)
        return (any('"GET /app/ HTTP/2" 200' in l and be in l for l in lines) and
                any('"CONNECT /app/ws HTTP/2" 200' in l and be in l for l in lines))
    wait_for(logged)
