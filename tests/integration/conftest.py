"""Shared fixtures: the rill binary and a running server on a free loopback port."""
import errno
import os
import socket
import subprocess
import time

import pytest

RILL_BIN = os.environ.get("RILL_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "rill")
SHARED = os.environ.get("RILL_SHARED") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def refused_port():
    """A loopback port that refuses connections for the whole test, on 127.0.0.1 and (where the
    machine has it) [::1], so `localhost` refuses too. free_port() gives its port back at once,
    so a server of a test running beside this one may take it (a "dead" backend then answers);
    a socket bound and never listening holds the port, and the kernel picks neither it for
    another bind(0) nor as a connection's own port."""
    for _ in range(20):
        held = [socket.socket()]
        held[0].bind(("127.0.0.1", 0))
        port = held[0].getsockname()[1]
        try:
            six = socket.socket(socket.AF_INET6)
        except OSError:  # no IPv6 at all
            break
        try:
            six.bind(("::1", port))
            held.append(six)
            break
        except OSError as e:
            six.close()
            if e.errno == errno.EADDRINUSE:  # taken on [::1]: another port
                held[0].close()
                continue
            break  # no IPv6 loopback: 127.0.0.1 alone
    try:
        yield port
    finally:
        for s in held:
            s.close()


def wait_for_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}: "
                               f"{proc.stderr.read().decode(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")


def run_rill(*args, timeout=30, input=None):
    return subprocess.run([RILL_BIN, *args], capture_output=True, timeout=timeout, input=input)


@pytest.fixture
def rill_bin():
    return RILL_BIN


@pytest.fixture
def server():
    """Starts `rill serve` on a free port; yields (port, process); stops it with SIGTERM."""
    procs = []

    def start(*extra):
        # no TLS listener unless asked: the default port 8443 is shared by every test run
        tls = [] if "--tls-listen" in extra else ["--tls-listen", "none"]
        for attempt in range(3):
            port = free_port()
            proc = subprocess.Popen([RILL_BIN, "serve", "--listen", f"127.0.0.1:{port}", *tls, *extra],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append(proc)
            try:
                wait_for_port(port, proc)
                return port, proc
            except RuntimeError as e:
                # the port, given back by free_port(), was taken by another process meanwhile
                if "in use" not in str(e) or attempt == 2:
                    raise

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---- the server's integration tests (helpers in server_fixtures.py) -----------------------------

@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """A document root: small.txt (5 bytes), big.bin (3 MB random), index.html, sub/index.html,
    page.txt with page.txt.gz, a dotfile and a symlink out of the root. Yields (path, files)."""
    from server_fixtures import make_site
    root = tmp_path_factory.mktemp("site")
    return str(root), make_site(str(root))


def _served(workdir, **kw):
    from server_fixtures import start_server
    srv = start_server(str(workdir), **kw)
    yield srv
    rc = srv.stop()
    assert rc == 0, f"server exit status {rc}; stderr:\n{srv.stderr()}"


@pytest.fixture(scope="module")
def static_server(site, tmp_path_factory):
    """`rill serve --root site` with cleartext, TLS (self-signed) and an access log."""
    work = tmp_path_factory.mktemp("static")
    yield from _served(work, root=site[0], access_log=str(work / "access.log"))


@pytest.fixture(scope="module")
def echo_server(site, tmp_path_factory):
    """examples/echo_server over the same document root."""
    from server_fixtures import ECHO_BIN
    yield from _served(tmp_path_factory.mktemp("echo"), root=site[0], binary=ECHO_BIN)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """`rill serve` without --root: the demo site."""
    yield from _served(tmp_path_factory.mktemp("demo"))


# ---- counts for scripts/test.sh: every case, so a skip is never hidden inside a passing module ----

_counts = {"passed": 0, "failed": 0, "skipped": 0, "reasons": {}}


def pytest_runtest_logreport(report):
    """Counted as pytest's own summary does: each call, and a setup or teardown that did not pass."""
    if report.when != "call" and report.outcome == "passed":
        return
    _counts[report.outcome] += 1
    if report.outcome == "skipped":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        _counts["reasons"][reason] = _counts["reasons"].get(reason, 0) + 1


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("RILL_TEST_COUNTS")
    if not out:
        return
    import json
    if exitstatus in (2, 3, 4) and not _counts["failed"]:
        _counts["failed"] = 1  # interrupted, or the module did not even collect: not a pass
    name = os.path.basename(str(session.config.args[0])) if session.config.args else "pytest"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(_counts, f)
