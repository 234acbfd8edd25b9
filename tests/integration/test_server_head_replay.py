"""A static file's response head sent again on the same HTTP/2 connection: after the first answer,
the server may send the previous block's bytes again without building the fields (same cached
file, same second, HPACK table unchanged). Checked with python-h2 as the client, whose HPACK
decoder sees every block: each answer must carry exactly the fields a fresh connection gets, and
any change (another answer in between, HEAD, 304, a range, another coding, a new second, a new
file, a smaller header table) must show."""
import email.utils
import gzip
import os
import socket
import time

import pytest

from conftest import wait_for_port, free_port, RILL_BIN

h2 = pytest.importorskip("h2.connection")
import h2.config  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402

A = b"hello, replay\n"
PAGE = b"compressible text " * 100


@pytest.fixture
def site(tmp_path):
    (tmp_path / "a.txt").write_bytes(A)
    (tmp_path / "b.txt").write_bytes(b"bbb")
    (tmp_path / "page.txt").write_bytes(PAGE)
    (tmp_path / "page.txt.gz").write_bytes(gzip.compress(PAGE, mtime=0))
    return tmp_path


@pytest.fixture
def port(site, server):
    p, _ = server("--root", str(site), "--threads", "1")
    return p


class Client:
    """One h2c connection (prior knowledge); bytes go out in pieces of `piece` when set."""

    def __init__(self, port, piece=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.piece = piece
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if self.piece:
            for i in range(0, len(data), self.piece):
                self.sock.sendall(data[i:i + self.piece])
        else:
            self.sock.sendall(data)

    def send(self, path, method="GET", extra=()):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", method), (":path", path), (":scheme", "http"),
                                     (":authority", "localhost"), *extra], end_stream=True)
        return sid

    def run(self, sids):
        """Flushes and reads until every stream in sids ended: {sid: (headers list, body)}."""
        self.flush()
        heads, bodies, done = {}, {s: b"" for s in sids}, set()
        while len(done) < len(sids):
            data = self.sock.recv(65536)
            assert data, "connection closed"
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    heads[ev.stream_id] = list(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    bodies[ev.stream_id] += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    done.add(ev.stream_id)
                elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    raise AssertionError(f"unexpected {ev}")
            self.flush()
        return {s: (heads[s], bodies[s]) for s in sids}

    def get(self, path, method="GET", extra=()):
        sid = self.send(path, method, extra)
        return self.run([sid])[sid]

    def close(self):
        self.sock.close()


def warm(c, path="/a.txt"):
    """A few answers first: the encoder indexes what it has seen more than once, and only a block
    that is all indexes is kept to be sent again."""
    for _ in range(5):
        c.get(path)


def without_date(headers):
    return [(n, v) for n, v in headers if n != "date"]


def check_date(headers):
    dates = [v for n, v in headers if n == "date"]
    assert len(dates) == 1
    when = email.utils.parsedate_to_datetime(dates[0]).timestamp()
    assert abs(when - time.time()) < 5
    return dates[0]


@pytest.mark.parametrize("piece", [None, 1])
def test_same_file_again_gives_the_same_fields(port, piece):
    c = Client(port, piece)
    first, body = c.get("/a.txt")
    assert body == A
    fields = dict(first)
    assert fields[":status"] == "200" and fields["content-length"] == str(len(A))
    assert fields["server"] == "rill" and fields["accept-ranges"] == "bytes"
    check_date(first)
    for _ in range(30):  # one at a time
        head, body = c.get("/a.txt")
        assert without_date(head) == without_date(first) and body == A
        check_date(head)
    answers = c.run([c.send("/a.txt") for _ in range(40)])  # many in one flight
    for head, body in answers.values():
        assert without_date(head) == without_date(first) and body == A
        check_date(head)
    c.close()


def test_other_answers_between_are_not_taken_for_it(port):
    c = Client(port)
    first, _ = c.get("/a.txt")
    warm(c)
    etag = dict(first)["etag"]
    b_head, b_body = c.get("/b.txt")
    assert b_body == b"bbb" and dict(b_head)["content-length"] == "3"
    assert dict(b_head)["etag"] != etag
    for _ in range(5):  # b's head is the one to send again now ...
        again, _ = c.get("/b.txt")
        assert without_date(again) == without_date(b_head)
    for _ in range(3):
        head, body = c.get("/a.txt")
        assert without_date(head) == without_date(first) and body == A
    head, body = c.get("/a.txt", "HEAD")
    assert without_date(head) == without_date(first) and body == b""
    head, body = c.get("/a.txt", extra=[("if-none-match", etag)])
    assert dict(head)[":status"] == "304" and body == b""
    assert "content-type" not in dict(head)
    head, body = c.get("/a.txt", extra=[("range", "bytes=0-4")])
    assert dict(head)[":status"] == "206" and body == A[:5]
    assert dict(head)["content-range"] == f"bytes 0-4/{len(A)}"
    head, body = c.get("/a.txt")
    assert without_date(head) == without_date(first) and body == A
    gz, body = c.get("/page.txt", extra=[("accept-encoding", "gzip")])
    assert dict(gz)["content-encoding"] == "gzip" and gzip.decompress(body) == PAGE
    plain, body = c.get("/page.txt")
    assert "content-encoding" not in dict(plain) and body == PAGE
    gz2, body = c.get("/page.txt", extra=[("accept-encoding", "gzip")])
    assert without_date(gz2) == without_date(gz) and gzip.decompress(body) == PAGE
    head, body = c.get("/a.txt", "HEAD")
    assert without_date(head) == without_date(first) and body == b""
    head, body = c.get("/a.txt")
    assert without_date(head) == without_date(first) and body == A
    c.close()


def test_a_new_second_and_a_new_file_show(port, site):
    c = Client(port)
    first, _ = c.get("/a.txt")
    warm(c)
    d1 = check_date(first)
    time.sleep(1.2)
    later, body = c.get("/a.txt")
    assert check_date(later) != d1 and body == A
    assert without_date(later) == without_date(first)
    again, _ = c.get("/a.txt")
    assert without_date(again) == without_date(first)
    # Requests for 2.5 s, across second boundaries within the cached entry's life: every Date is
    # the second the answer was made in, never the previous one.
    end = time.time() + 2.5
    while time.time() < end:
        sent = int(time.time() - 0.05)  # time() (the server's) may trail the precise clock by a tick
        head, _ = c.get("/a.txt")
        assert email.utils.parsedate_to_datetime(check_date(head)).timestamp() >= sent
    new = b"changed, and longer than before\n"
    (site / "a.txt").write_bytes(new)
    os.utime(site / "a.txt", (time.time() + 10, time.time() + 10))
    time.sleep(1.2)  # past the file cache's one second
    changed, body = c.get("/a.txt")
    assert body == new
    assert dict(changed)["content-length"] == str(len(new))
    assert dict(changed)["etag"] != dict(first)["etag"]
    assert dict(changed)["last-modified"] != dict(first)["last-modified"]
    again, body = c.get("/a.txt")
    assert without_date(again) == without_date(changed) and body == new
    c.close()


def test_a_smaller_header_table_is_signalled_first(port):
    c = Client(port)
    first, _ = c.get("/a.txt")
    warm(c)
    c.conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    c.flush()
    # The next block must open with a table size update (RFC 7541 section 4.2); python-h2's decoder
    # applies it, and a block that still referred to dropped entries would not decode.
    for _ in range(3):
        head, body = c.get("/a.txt")
        assert without_date(head) == without_date(first) and body == A
    assert c.conn.decoder.header_table_size == 0
    c.close()


def test_two_connections_each_get_their_own(port):
    c1, c2 = Client(port), Client(port)
    f1, _ = c1.get("/a.txt")
    c2.get("/b.txt")
    for _ in range(6):
        h1, b1 = c1.get("/a.txt")
        h2_, b2 = c2.get("/a.txt")
        assert without_date(h1) == without_date(f1) and b1 == A
        assert without_date(h2_) == without_date(f1) and b2 == A
    c1.close()
    c2.close()


def test_http1_answer_has_the_same_fields(port):
    c = Client(port)
    first, _ = c.get("/a.txt")
    warm(c)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(2):
            s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(A):
                chunk = s.recv(65536)
                assert chunk
                data += chunk
            lines = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
            assert lines[0] == "HTTP/1.1 200 OK"
            h1 = {ln.split(":", 1)[0].lower(): ln.split(":", 1)[1].strip() for ln in lines[1:]}
            for name, value in without_date(first):
                if not name.startswith(":"):
                    assert h1[name] == value
    c.close()
