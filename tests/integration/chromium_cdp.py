"""A minimal Chrome DevTools Protocol driver for headless Chromium (Debian's chromium package):
start the browser, open a URL, evaluate an async script in the page. Uses python3-websockets."""
import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import websockets

CHROMIUM = shutil.which("chromium")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chromium:
    def __init__(self, extra_flags=()):
        self.profile = tempfile.mkdtemp(prefix="rill-chromium-")
        self.port = _free_port()
        # Flags that keep a sandboxed, offline machine quiet (no background fetches to the web).
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-extensions", "--ignore-certificate-errors",
                 f"--user-data-dir={self.profile}", f"--remote-debugging-port={self.port}",
                 *extra_flags, "about:blank"]
        self.proc = subprocess.Popen([CHROMIUM, *flags], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/version", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("chromium did not start")
                time.sleep(0.2)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def run(self, url, script, timeout=60):
        """Navigates the page to url, waits for load, evaluates script (an expression producing a
        promise of a JSON-serialisable value) and returns its value."""
        return asyncio.run(asyncio.wait_for(self._run(url, script), timeout))

    async def _run(self, url, script):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=5) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as cdp:
            ids = iter(range(1, 1 << 30))

            async def call(method, **params):
                my_id = next(ids)
                await cdp.send(json.dumps({"id": my_id, "method": method, "params": params}))
                while True:
                    msg = json.loads(await cdp.recv())
                    if msg.get("id") == my_id:
                        if "error" in msg:
                            raise RuntimeError(f"{method}: {msg['error']}")
                        return msg["result"]
                    if msg.get("method") == "Page.loadEventFired":
                        self._loaded = True

            self._loaded = False
            await call("Page.enable")
            await call("Page.navigate", url=url)
            while not self._loaded:
                msg = json.loads(await cdp.recv())
                if msg.get("method") == "Page.loadEventFired":
                    self._loaded = True
            result = await call("Runtime.evaluate", expression=script, awaitPromise=True,
                                returnByValue=True)
            if result.get("exceptionDetails"):
                raise RuntimeError(f"script failed: {result['exceptionDetails']}")
            return result["result"]["value"]
