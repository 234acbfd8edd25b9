"""gRPC through `rill serve --proxy` with Debian's python3-grpcio on both sides: a grpcio server
(h2c on loopback, a service made of generic handlers, no protoc) behind rill, a grpcio client in
front over h2c and over TLS. Unary, server/client/bidirectional streaming, a trailers-only error,
metadata both ways, a deadline and a client cancel (the backend must see the RPC cancelled), and
a route to an HTTP/1.1 backend (gRPC needs HTTP/2 end to end: a clean error, no hang)."""
import hashlib
import threading
import time
from concurrent import futures

import pytest

grpc = pytest.importorskip("grpc", reason="python3-grpcio is not installed (scripts/setup.sh test)")

from server_fixtures import cert_path, start_server  # noqa: E402

MIB = 1024 * 1024
SERVICE = "rill.Test"
BIG = 16 * MIB  # above grpcio's 4 MiB default so one 4 MiB message fits, framing included
OPTIONS = [("grpc.max_receive_message_length", BIG), ("grpc.max_send_message_length", BIG)]


def ident(b):
    return b


class Backend:
    """A grpcio server on 127.0.0.1 (insecure: h2c). Each handler notes what it saw."""

    def __init__(self):
        self.metadata = []               # invocation metadata of each Unary call
        self.cancelled = {}              # method -> threading.Event set by the RPC's done callback
        self.started = {}                # method -> threading.Event set once the handler runs
        for m in ("Slow", "Forever"):
            self.cancelled[m] = threading.Event()
            self.started[m] = threading.Event()
        self.active_after = {}           # method -> context.is_active() once the RPC ended
        h = {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary, ident, ident),
            "Many": grpc.unary_stream_rpc_method_handler(self.many, ident, ident),
            "Sum": grpc.stream_unary_rpc_method_handler(self.sum, ident, ident),
            "Echo": grpc.stream_stream_rpc_method_handler(self.echo, ident, ident),
            "Missing": grpc.unary_unary_rpc_method_handler(self.missing, ident, ident),
            "Slow": grpc.unary_unary_rpc_method_handler(self.slow, ident, ident),
            "Forever": grpc.unary_stream_rpc_method_handler(self.forever, ident, ident),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=OPTIONS)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, h),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(grace=None).wait(10)

    def unary(self, req, ctx):
        self.metadata.append(dict(ctx.invocation_metadata()))
        ctx.send_initial_metadata((("x-initial", "first"),))
        ctx.set_trailing_metadata((("x-trailing", "last"), ("x-bin-bin", b"\x00\xff")))
        return b"echo:" + req

    def many(self, req, ctx):
        count, size = (int(x) for x in req.split(b":"))
        for i in range(count):
            yield (b"%08d" % i + b"x" * size)[:max(size, 8)]

    def sum(self, it, ctx):
        h, n, total = hashlib.sha256(), 0, 0
        for m in it:
            h.update(m)
            n += 1
            total += len(m)
        return b"%d:%d:%s" % (n, total, h.hexdigest().encode())

    def echo(self, it, ctx):
        for m in it:
            yield b"re:" + m

    def missing(self, req, ctx):
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + req.decode())

    def _watch(self, name, ctx):
        ctx.add_callback(lambda: self.cancelled[name].set())
        self.started[name].set()

    def slow(self, req, ctx):
        self.slow_remaining = ctx.time_remaining()  # huge: no deadline came with the call
        self._watch("Slow", ctx)
        deadline = time.monotonic() + 30
        while ctx.is_active() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.active_after["Slow"] = ctx.is_active()
        return b"too late"

    def forever(self, req, ctx):
        self._watch("Forever", ctx)
        deadline = time.monotonic() + 30
        i = 0
        while ctx.is_active() and time.monotonic() < deadline:
            yield b"tick %d" % i
            i += 1
            time.sleep(0.01)


@pytest.fixture(scope="module")
def backend():
    b = Backend()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def rill(backend, tmp_path_factory):
    """rill with `/` to the grpcio backend over h2c, `/h1.Test` to the same server as an
    http:// (HTTP/1.1) backend, and (from a file) `/rill.Test/Slow` to it with grpc-timeout
    removed, so only rill's RST_STREAM can end that call at the backend. Must exit 0 (no leak
    under ASan)."""
    work = tmp_path_factory.mktemp("grpc")
    conf = work / "rill.yaml"
    conf.write_text("routes:\n"
                    "  - prefix: /rill.Test/Slow\n"
                    f"    backends: h2c://127.0.0.1:{backend.port}\n"
                    "    request-headers: {remove: [grpc-timeout]}\n")
    s = start_server(str(work), tls=True, extra=(
        "--config", str(conf),
        "--proxy", f"/=h2c://127.0.0.1:{backend.port}",
        "--proxy", f"/h1.Test=http://127.0.0.1:{backend.port}",
        "--proxy-timeout", "5000"))
    s.work = str(work)
    yield s
    rc = s.stop()
    assert rc == 0, f"server exit status {rc}; stderr:\n{s.stderr()}"


def channel(rill, front):
    if front == "h2c":
        return grpc.insecure_channel(f"127.0.0.1:{rill.port}", options=OPTIONS)
    with open(cert_path(rill.work), "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    return grpc.secure_channel(f"127.0.0.1:{rill.tls_port}", creds,
                               options=OPTIONS + [("grpc.ssl_target_name_override", "localhost")])


@pytest.fixture(params=["h2c", "tls"])
def chan(request, rill):
    c = channel(rill, request.param)
    yield c
    c.close()


def method(chan, name, kind="unary_unary", service=SERVICE):
    return getattr(chan, kind)(f"/{service}/{name}", request_serializer=ident,
                               response_deserializer=ident)


# ---- calls ------------------------------------------------------------------------------------

def test_unary_with_metadata_both_ways(chan, backend):
    call = method(chan, "Unary")
    resp, info = call.with_call(b"hello", timeout=20,
                                metadata=(("x-request", "abc"), ("x-raw-bin", b"\x01\x02")))
    assert resp == b"echo:hello"
    assert info.code() == grpc.StatusCode.OK
    assert ("x-initial", "first") in info.initial_metadata()
    trailing = dict(info.trailing_metadata())
    assert trailing["x-trailing"] == "last" and trailing["x-bin-bin"] == b"\x00\xff"
    seen = backend.metadata[-1]
    assert seen["x-request"] == "abc" and seen["x-raw-bin"] == b"\x01\x02"


def test_server_streaming_many_small(chan):
    """grpcio gives back flow-control credit after each small message it reads: thousands of tiny
    WINDOW_UPDATEs on a large window, which rill's front once took for a flood (GOAWAY
    ENHANCE_YOUR_CALM, the call UNAVAILABLE "Socket closed")."""
    got = list(method(chan, "Many", "unary_stream")(b"3000:32", timeout=60))
    assert len(got) == 3000
    assert [int(m[:8]) for m in got] == list(range(3000))


def test_server_streaming_one_4mib_message(chan):
    got = list(method(chan, "Many", "unary_stream")(b"1:%d" % (4 * MIB), timeout=60))
    assert len(got) == 1 and len(got[0]) == 4 * MIB and got[0][:8] == b"00000000"


def test_client_streaming(chan):
    msgs = [bytes([i % 256]) * (i * 97 % 5000) for i in range(300)] + [b"y" * MIB]
    resp = method(chan, "Sum", "stream_unary")(iter(msgs), timeout=60)
    h = hashlib.sha256(b"".join(msgs)).hexdigest().encode()
    assert resp == b"%d:%d:%s" % (len(msgs), sum(map(len, msgs)), h)


def test_bidi_interleaved(chan):
    """One message out, its answer back, before the next goes: a proxy that buffered either
    direction until the end would hang here (the deadline fails the test)."""
    send = __import__("queue").Queue()

    def requests():
        while True:
            m = send.get()
            if m is None:
                return
            yield m

    responses = method(chan, "Echo", "stream_stream")(requests(), timeout=30)
    for i in range(50):
        send.put(b"ping %d" % i)
        assert next(responses) == b"re:ping %d" % i
    send.put(None)
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK


def test_trailers_only_error(chan):
    """abort() before any message: one HEADERS frame with END_STREAM carrying grpc-status. The
    client must see that status and message, not INTERNAL or UNAVAILABLE."""
    with pytest.raises(grpc.RpcError) as e:
        method(chan, "Missing")(b"widget", timeout=20)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value
    assert e.value.details() == "no such thing: widget"


def test_deadline_cancels_backend(chan, backend):
    backend.cancelled["Slow"].clear()
    backend.started["Slow"].clear()
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        method(chan, "Slow")(b"", timeout=1.0)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value
    assert time.monotonic() - t0 < 10
    assert backend.started["Slow"].is_set()
    assert backend.slow_remaining > 3600  # the route removed grpc-timeout: no deadline there
    # so the client's RST_STREAM, passed on by rill, is what ends it (the handler waits 30 s)
    assert backend.cancelled["Slow"].wait(10)
    deadline = time.monotonic() + 10
    while "Slow" not in backend.active_after and time.monotonic() < deadline:
        time.sleep(0.02)
    assert backend.active_after.pop("Slow") is False


def test_client_cancel_mid_stream_cancels_backend(chan, backend):
    """No deadline here: only the client's RST_STREAM, passed on by rill, can tell the backend."""
    backend.cancelled["Forever"].clear()
    backend.started["Forever"].clear()
    call = method(chan, "Forever", "unary_stream")(b"")
    for _ in range(20):
        assert next(call).startswith(b"tick ")
    call.cancel()
    assert call.code() == grpc.StatusCode.CANCELLED
    # the handler would stream for 30 s: its RPC ends this soon only if it was cancelled (grpcio
    # does not resume a cancelled handler's generator, so there is no after-the-loop to look at)
    assert backend.cancelled["Forever"].wait(10), "the backend never saw the cancel"


def test_unknown_method_is_unimplemented(chan):
    """The backend's own trailers-only UNIMPLEMENTED comes through as such."""
    with pytest.raises(grpc.RpcError) as e:
        method(chan, "Nope")(b"", timeout=20)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value


def test_http1_backend_fails_cleanly(chan):
    """gRPC needs HTTP/2 to the backend: the grpcio server does not speak HTTP/1.1, so rill
    answers 502 with no grpc-status, which grpcio maps to UNAVAILABLE. Quickly, no hang."""
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        method(chan, "Unary", service="h1.Test")(b"x", timeout=20)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
    assert "502" in e.value.details(), e.value.details()
    assert time.monotonic() - t0 < 10


def test_many_calls_on_one_channel(chan):
    """Concurrent unary calls multiplexed on one front connection and one backend client."""
    call = method(chan, "Unary")
    futs = [call.future(b"%d" % i, timeout=30) for i in range(200)]
    assert [f.result() for f in futs] == [b"echo:%d" % i for i in range(200)]


# ---- the trailers-only path and other responses that end in their head ------------------------

class HeadOnlyBackend:
    """A python-h2 server over h2c that answers every request with one HEADERS frame carrying
    END_STREAM and no content-length (as an HTTP/2 server may answer HEAD)."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        import h2.config
        import h2.connection
        import h2.events
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
            conn.initiate_connection()
            c.sendall(conn.data_to_send())
            try:
                while data := c.recv(65536):
                    for ev in conn.receive_data(data):
                        if isinstance(ev, h2.events.RequestReceived):
                            conn.send_headers(ev.stream_id, [(":status", "200"), ("x-head", "only")],
                                              end_stream=True)
                    c.sendall(conn.data_to_send())
            except OSError:
                pass
            finally:
                c.close()

    def stop(self):
        self.sock.close()


@pytest.mark.parametrize("method_name", ["GET", "HEAD"])
def test_head_that_ends_the_response(tmp_path, method_name):
    """A backend head with END_STREAM goes on with END_STREAM (one HEADERS frame, the body
    empty: content-length 0), except for HEAD, whose head goes at once and as it came: a
    content-length: 0 there would misdescribe the resource."""
    import h2.events
    from test_proxy import h2_request
    be = HeadOnlyBackend()
    s = start_server(str(tmp_path), tls=False, extra=("--proxy", f"/=h2c://127.0.0.1:{be.port}"))
    try:
        events = h2_request(s.port, [(":method", method_name), (":scheme", "http"),
                                     (":authority", "x"), (":path", "/h")])
        resp = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        assert resp, events
        fields = dict(resp[0].headers)
        assert fields[b":status"] == b"200" and fields[b"x-head"] == b"only"
        if method_name == "GET":
            assert resp[0].stream_ended is not None, events  # END_STREAM on the HEADERS frame
            assert fields.get(b"content-length") == b"0"
        else:
            assert b"content-length" not in fields, fields
        assert any(isinstance(e, h2.events.StreamEnded) for e in events), events
    finally:
        be.stop()
        rc = s.stop()
        assert rc == 0, s.stderr()
