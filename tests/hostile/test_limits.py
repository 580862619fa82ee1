"""Size limits, timeouts and the connection cap (DESIGN.md §4), with small values."""

from __future__ import annotations

import socket
import time

import pytest

from corkweb import Limits

from .helpers import SENTINEL, Case, exchange, make_app, parse_stream, read_until_close, run_case

# helpers.LIMITS: request line 1024, head 4096, 32 header lines, body 64 KiB, trailer 1 KiB.
HOST = b"Host: a\r\n"


def get(target: bytes = b"/", extra: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\n" + HOST + extra + b"\r\n"


def headers(n: int, size: int = 8) -> bytes:
    return b"".join(b"X-%03d: %s\r\n" % (i, b"v" * size) for i in range(n))


def post_chunked(body: bytes) -> bytes:
    return b"POST /b HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n" + body


DRIP = [b"a" * 4096] * 64  # 256 KiB sent in pieces, never ending a line

CASES = [
    # -- request line: 414 (RFC 9112 §3) --------------------------------------------------
    Case("target-at-limit", get(b"/" + b"t" * 1023), (200,), False),
    Case("target-over-limit", get(b"/" + b"t" * 1024), (414,), True),
    Case("target-endless", [b"GET /"] + DRIP, (414,), True),
    # -- head: 431 (RFC 6585 §5) -----------------------------------------------------------
    Case("header-lines-at-limit", get(extra=headers(31)), (200,), False),
    Case("header-lines-over-limit", get(extra=headers(32)), (431,), True),
    Case("header-lines-many-empty-values", get(extra=b"X:\r\n" * 1000), (431,), True),
    Case("field-over-limit", get(extra=b"X: " + b"v" * 4096 + b"\r\n"), (431,), True),
    Case("field-name-over-limit", get(extra=b"X" * 4096 + b": v\r\n"), (431,), True),
    Case("head-over-limit", get(extra=headers(30, 140)), (431,), True),
    Case("field-endless", [b"GET / HTTP/1.1\r\nX: "] + DRIP, (431,), True),
    Case("field-name-endless", [b"GET / HTTP/1.1\r\nX"] + DRIP, (431,), True),
    Case("head-1mib", get(extra=b"X: " + b"v" * (1 << 20) + b"\r\n"), (431,), True),
    Case("head-10000-lines", get(extra=b"X: v\r\n" * 10000), (431,), True),
    # -- body: 413, from Content-Length before any body byte is read ----------------------
    Case("cl-at-limit", b"POST /b HTTP/1.1\r\n" + HOST + b"Content-Length: 65536\r\n\r\n"
         + b"b" * 65536, (200,), False, (b"POST /b 65536",)),
    # The sentinel sent after the head would be body bytes: it is not read, 413 comes first.
    Case("cl-over-limit-no-body-sent", b"POST /b HTTP/1.1\r\n" + HOST
         + b"Content-Length: 65537\r\n\r\n", (413,), True),
    Case("chunked-at-limit", post_chunked(b"10000\r\n" + b"b" * 65536 + b"\r\n0\r\n\r\n"),
         (200,), False, (b"POST /b 65536",)),
    Case("chunked-one-chunk-over", post_chunked(b"10001\r\n" + b"b" * 65537 + b"\r\n0\r\n\r\n"),
         (413,), True),
    Case("chunked-many-chunks-over", post_chunked(b"400\r\n" + b"b" * 1024 + b"\r\n") * 1
         + (b"400\r\n" + b"b" * 1024 + b"\r\n") * 64 + b"0\r\n\r\n", (413,), True),
    # -- chunk extensions and trailers: max_trailer (431) ---------------------------------
    Case("trailer-at-limit", post_chunked(b"0\r\nX: " + b"t" * 1000 + b"\r\n\r\n"), (200,),
         False),
    Case("trailers-many", post_chunked(b"0\r\n" + b"X: t\r\n" * 200 + b"\r\n"), (431,), True),
    Case("trailer-endless", [post_chunked(b"0\r\nX: ")] + DRIP, (431,), True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_limits(hostile_server, case: Case) -> None:
    run_case(hostile_server.port, case)


def test_413_reaches_a_client_still_sending_its_body(hostile_server) -> None:
    """The refusal is read by a client that is still uploading (no reset eats it)."""
    head = b"POST /b HTTP/1.1\r\n" + HOST + b"Content-Length: 1048576\r\n\r\n"
    ex = exchange(hostile_server.port, [head] + [b"b" * 65536] * 16, sentinel=False)
    assert ex.statuses == [413]


# -- timeouts ---------------------------------------------------------------------------------

FAST = dict(head_timeout=0.4, body_timeout=0.4, keepalive_timeout=0.4)


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def test_head_deadline_is_total_not_reset_per_byte(start_server) -> None:
    """Slowloris: one byte every 50 ms still meets the 0.4 s deadline for the whole head."""
    server = start_server(make_app(Limits(**FAST)))
    with connect(server.port) as s:
        s.setblocking(False)
        start = time.monotonic()
        data = b""
        for byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"z" * 100:
            s.send(bytes([byte]))
            time.sleep(0.05)
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            break
        elapsed = time.monotonic() - start
        s.setblocking(True)
        data += read_until_close(s)
    responses, _ = parse_stream(data)
    assert [r.status for r in responses] == [408]
    assert 0.35 < elapsed < 1.5, elapsed


def test_head_deadline_for_a_partial_request_line(start_server) -> None:
    server = start_server(make_app(Limits(**FAST)))
    with connect(server.port) as s:
        s.sendall(b"GET /slo")
        start = time.monotonic()
        data = read_until_close(s)
        assert 0.35 < time.monotonic() - start < 1.5
    assert [r.status for r in parse_stream(data)[0]] == [408]


def test_slow_body_deadline(start_server) -> None:
    server = start_server(make_app(Limits(**FAST)))
    with connect(server.port) as s:
        s.sendall(b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
        start = time.monotonic()
        data = read_until_close(s)
        assert 0.35 < time.monotonic() - start < 1.5
    assert [r.status for r in parse_stream(data)[0]] == [408]


def test_slow_chunked_body_deadline(start_server) -> None:
    server = start_server(make_app(Limits(**FAST)))
    with connect(server.port) as s:
        s.sendall(post_chunked(b"5\r\nab"))
        data = read_until_close(s)
    assert [r.status for r in parse_stream(data)[0]] == [408]


def test_keep_alive_idle_close(start_server) -> None:
    server = start_server(make_app(Limits(**FAST)))
    with connect(server.port) as s:
        s.sendall(get())
        start = time.monotonic()
        data = read_until_close(s)  # the response, then EOF when the idle time is over
        assert 0.35 < time.monotonic() - start < 1.5
    assert [r.status for r in parse_stream(data)[0]] == [200]


def test_silent_connection_is_closed(start_server) -> None:
    server = start_server(make_app(Limits(**FAST)))
    with connect(server.port) as s:
        start = time.monotonic()
        assert read_until_close(s) == b""
        assert 0.35 < time.monotonic() - start < 1.5


def test_timeout_cases_answer_nothing_else(start_server) -> None:
    """A 408 is the last thing on the connection: a request sent after it is not answered."""
    server = start_server(make_app(Limits(**FAST)))
    with connect(server.port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        data = s.recv(65536)  # blocks until the 408 arrives
        try:
            s.sendall(b"\r\n" + SENTINEL)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data += read_until_close(s)
    assert [r.status for r in parse_stream(data)[0]] == [408]


# -- connection cap -----------------------------------------------------------------------

def test_connection_cap_answers_503_then_recovers(start_server) -> None:
    server = start_server(make_app(Limits(max_connections=3)))
    held = [connect(server.port) for _ in range(3)]
    try:
        held[0].sendall(get())
        assert held[0].recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")  # all three accepted
        for _ in range(3):
            ex = exchange(server.port, get(), sentinel=False)
            assert ex.statuses == [503]
            assert ex.responses[0].header(b"connection") == b"close"
    finally:
        for s in held:
            s.close()
    # The slots free up as the server sees the closes; then requests are served again.
    deadline = time.monotonic() + 5
    while True:
        ex = exchange(server.port, get(), sentinel=True)
        if ex.statuses != [503] or time.monotonic() > deadline:
            break
    assert ex.statuses == [200, 200]


def test_pipelined_reads_that_begin_mid_head_are_not_refused() -> None:
    """The raw-head bound counts a head that spans reads, not a read that holds many heads.

    It used to add the whole read to the unfinished head before parsing: a 256 KiB read of
    pipelined requests that began in the middle of one was refused 431 (regression).
    """
    from corkweb.wire.parser import ParserSink, RequestParser

    class Sink(ParserSink):
        requests = 0

        def on_request(self, head) -> None:
            Sink.requests += 1

        def on_body(self, chunk) -> None:
            pass

        def on_request_end(self) -> None:
            pass

    parser = RequestParser(Sink(), Limits(max_head=1024, max_request_line=512))
    one = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    parser.feed(one[:9])
    parser.feed(one[9:] + one * 5000)
    assert Sink.requests == 5001
