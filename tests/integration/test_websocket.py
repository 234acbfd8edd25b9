"""WebSockets against real peers: over HTTP/1.1 Upgrade (RFC 6455) and over HTTP/2 streams by
extended CONNECT (RFC 8441), with permessage-deflate (RFC 7692)."""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest
import websockets

from conftest import RILL_BIN, free_port, wait_for_port

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def rill():
    """Starts `rill serve` (demo site: /ws/echo, /ws/chat) on free cleartext and TLS ports."""
    procs, dirs = [], []

    def start(*extra, threads=2):
        port, tls_port = free_port(), free_port()
        state = tempfile.mkdtemp(prefix="rill-ws-state-")
        dirs.append(state)
        proc = subprocess.Popen([RILL_BIN, "serve", "--listen", f"127.0.0.1:{port}",
                                 "--tls-listen", f"127.0.0.1:{tls_port}", "--state-dir", state,
                                 "--threads", str(threads), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        wait_for_port(port, proc)
        wait_for_port(tls_port, proc)
        return port, tls_port

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


# ---- python3-websockets as the client, over HTTP/1.1 -----------------------------------------------

def test_echo_text_and_binary_with_deflate(rill):
    port, _ = rill()

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/echo", compression="deflate",
                                      max_size=None) as ws:
            assert ws.response_headers["sec-websocket-extensions"].startswith("permessage-deflate")
            await ws.send("hello")
            assert await ws.recv() == "hello"
            blob = os.urandom(200_000)  # incompressible, several frames of TCP
            await ws.send(blob)
            assert await ws.recv() == blob
            text = "compressible " * 20_000
            await ws.send(text)
            assert await ws.recv() == text
    run(go())


def test_echo_without_compression(rill):
    port, _ = rill()

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/echo", compression=None) as ws:
            assert "sec-websocket-extensions" not in ws.response_headers
            await ws.send("plain")
            assert await ws.recv() == "plain"
    run(go())


def test_chat_broadcasts_across_workers(rill):
    port, _ = rill(threads=2)

    async def go():
        clients = [await websockets.connect(f"ws://127.0.0.1:{port}/ws/chat") for _ in range(6)]
        try:
            for c in clients:
                welcome = json.loads(await c.recv())
                assert welcome["type"] == "welcome" and welcome["transport"] == "HTTP/1.1"
            await clients[0].send('hi "all" <3')
            for c in clients:
                msg = json.loads(await c.recv())
                assert msg == {"type": "message", "from": msg["from"], "text": 'hi "all" <3'}
        finally:
            for c in clients:
                await c.close()
    run(go())


def test_close_handshake_echoes_code(rill):
    port, _ = rill()

    async def go():
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/echo")
        await ws.close(code=4001, reason="bye")
        assert ws.close_code == 4001
    run(go())


def test_protocol_violation_closes_with_1002(rill):
    port, _ = rill()

    async def go():
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/echo")
        # an unmasked client frame is a protocol error (RFC 6455 §5.1)
        ws.transport.write(b"\x81\x02hi")
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1002
    run(go())


def test_plain_get_to_websocket_endpoint_is_426(rill):
    port, _ = rill()
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        f"http://127.0.0.1:{port}/ws/echo"], capture_output=True, timeout=10)
    assert r.stdout == b"426"


def test_wrong_version_is_426_with_supported_version(rill):
    port, _ = rill()
    r = subprocess.run(["curl", "-s", "-i", "-H", "Upgrade: websocket", "-H", "Connection: Upgrade",
                        "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                        "-H", "Sec-WebSocket-Version: 8", f"http://127.0.0.1:{port}/ws/echo"],
                       capture_output=True, timeout=10)
    assert r.stdout.startswith(b"HTTP/1.1 426")
    assert b"sec-websocket-version: 13" in r.stdout.lower()


def test_origin_allow_list(rill):
    port, _ = rill("--ws-origin", "https://good.example")

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/echo",
                                      origin="https://good.example") as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
        with pytest.raises(websockets.InvalidStatusCode) as refused:
            await websockets.connect(f"ws://127.0.0.1:{port}/ws/echo", origin="https://evil.example")
        assert refused.value.status_code == 403
    run(go())


# ---- Node's http2 client: extended CONNECT against rill --------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_node_http2_client_extended_connect(rill, tls):
    port, tls_port = rill()
    url = f"https://127.0.0.1:{tls_port}" if tls else f"http://127.0.0.1:{port}"
    r = subprocess.run(["node", os.path.join(HERE, "ws_node_client.js"), url],
                       capture_output=True, timeout=30)
    out = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert out == {"enableConnectProtocol": True, "status": 200, "opcode": 1,
                   "text": "hello over an HTTP/2 stream"}


# ---- `rill ws` as the client -----------------------------------------------------------------------

def rill_ws(*args, lines, timeout=20):
    """Runs `rill ws -v ...`, sending each line and waiting for one reply per line before the next;
    closes stdin at the end. Returns (exit code, replies, stderr)."""
    proc = subprocess.Popen([RILL_BIN, "ws", "-v", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    replies = []
    try:
        for line in lines:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
            replies.append(proc.stdout.readline().decode().rstrip("\n"))
        proc.stdin.close()
        proc.wait(timeout=timeout)
        rest, err = proc.stdout.read(), proc.stderr.read()
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    replies += [x for x in rest.decode().splitlines() if x]
    return proc.returncode, replies, err.decode()


@pytest.mark.parametrize("mode", ["h2c", "h2", "http1.1-cleartext", "http1.1-tls"])
def test_rill_ws_against_rill(rill, mode):
    port, tls_port = rill()
    args = {"h2c": [f"ws://127.0.0.1:{port}/ws/echo"],
            "h2": ["-k", f"wss://127.0.0.1:{tls_port}/ws/echo"],
            "http1.1-cleartext": ["--http1.1", f"ws://127.0.0.1:{port}/ws/echo"],
            "http1.1-tls": ["--http1.1", "-k", f"wss://127.0.0.1:{tls_port}/ws/echo"]}[mode]
    code, replies, err = rill_ws(*args, lines=["one", "two", "x" * 70_000])
    assert code == 0, err
    assert replies == ["one", "two", "x" * 70_000]
    expected = "an HTTP/2 stream" if mode in ("h2c", "h2") else "over HTTP/1.1"
    assert expected in err and "permessage-deflate" in err and "closed (1000)" in err


def test_rill_ws_against_python_websockets_server():
    port = free_port()
    server = subprocess.Popen(["/usr/bin/python3", "-c", f"""
import asyncio, websockets
async def echo(ws, path=None):
    async for m in ws:
        await ws.send("py:" + m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", {port}):
        await asyncio.sleep(60)
asyncio.run(main())
"""])
    try:
        wait_for_port(port, server)
        # ws:// first tries HTTP/2 prior knowledge; this server only speaks HTTP/1.1
        code, replies, err = rill_ws(f"ws://127.0.0.1:{port}/", lines=["a", "b"])
        assert code == 0, err
        assert replies == ["py:a", "py:b"]
        assert "over HTTP/1.1" in err
    finally:
        server.kill()
        server.wait()


def test_rill_ws_against_node_http2_server():
    node = subprocess.Popen(["node", os.path.join(HERE, "ws_node_server.js")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(node.stdout.readline())
        code, replies, err = rill_ws(f"ws://127.0.0.1:{port}/chat", lines=["hello", "again"])
        assert code == 0, err
        assert replies == ["node:hello", "node:again"]
        assert "an HTTP/2 stream (RFC 8441)" in err
    finally:
        node.kill()
        node.wait()


def test_rill_ws_bad_usage_and_unreachable():
    assert subprocess.run([RILL_BIN, "ws"], capture_output=True).returncode == 2
    assert subprocess.run([RILL_BIN, "ws", "http://x/"], capture_output=True).returncode == 2
    assert subprocess.run([RILL_BIN, "ws", "--bogus", "ws://x/"], capture_output=True).returncode == 2
    r = subprocess.run([RILL_BIN, "ws", f"ws://127.0.0.1:{free_port()}/"], input=b"",
                       capture_output=True, timeout=20)
    assert r.returncode == 1 and b"failed" in r.stderr


# ---- Chromium: a page over h2, its WebSocket on the same connection --------------------------------

BROWSER_SCRIPT = r"""
(async () => {
  const r = {};
  const open = (path) => new Promise((res, rej) => {
    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path);
    ws.onopen = () => res(ws); ws.onerror = () => rej(new Error('websocket failed: ' + path));
  });
  const next = (ws) => new Promise((res) => { ws.onmessage = (e) => res(e.data); });
  const chat = await open('/ws/chat');
  const welcome = JSON.parse(await next(chat));
  r.transport = welcome.transport;
  r.compressed = welcome.compressed;
  r.sameConnection = welcome.connection === document.getElementById('connection-id').textContent;
  r.pageProtocol = document.getElementById('protocol').textContent;
  const echo = await open('/ws/echo');
  r.extensions = echo.extensions;
  let p = next(echo); echo.send('hello'); r.small = (await p) === 'hello';
  let big = ''; for (let i = 0; big.length < 120000; i++) big += 'line ' + i + ' ' + Math.random() + '\n';
  p = next(echo); echo.send(big); r.big = (await p) === big;
  chat.close(); echo.close();
  return r;
})()
"""


@pytest.fixture(scope="module")
def chromium():
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed (make test installs Debian's chromium)")
    from chromium_cdp import Chromium
    browser = Chromium()
    yield browser
    browser.close()


def test_chromium_websocket_over_the_pages_http2_connection(rill, chromium):
    _, tls_port = rill()
    r = chromium.run(f"https://127.0.0.1:{tls_port}/", BROWSER_SCRIPT)
    assert r == {"transport": "h2", "compressed": True, "sameConnection": True,
                 "pageProtocol": "h2", "extensions": "permessage-deflate", "small": True,
                 "big": True}


def test_chromium_websocket_over_http11_on_cleartext(rill, chromium):
    port, _ = rill()
    r = chromium.run(f"http://127.0.0.1:{port}/", BROWSER_SCRIPT)
    assert r["transport"] == "HTTP/1.1" and r["pageProtocol"] == "HTTP/1.1"
    assert r["compressed"] and r["small"] and r["big"]


def test_extended_connect_tunnel_hook_and_unknown_protocol(rill):
    port, _ = rill()
    r = subprocess.run(["node", os.path.join(HERE, "tunnel_node_client.js"), f"http://127.0.0.1:{port}"],
                       capture_output=True, timeout=30)
    assert json.loads(r.stdout.decode().strip().splitlines()[-1]) == {
        "echoStatus": 200, "echoed": "abcdef", "otherStatus": 501}
