"""Several requests on one connection: pipelining order, closing, unread bodies, Expect and
Upgrade (RFC 9112 §9, RFC 9110 §10.1.1, §7.8)."""

from __future__ import annotations

import socket

import pytest

from .helpers import SENTINEL, SMUGGLED, Case, parse_stream, read_until_close, run_case


def req(target: bytes = b"/s", *lines: bytes, method: bytes = b"GET", body: bytes = b"",
        version: bytes = b"HTTP/1.1") -> bytes:
    return method + b" " + target + b" " + version + b"\r\nHost: a\r\n" + b"".join(
        line + b"\r\n" for line in lines) + b"\r\n" + body


def post(target: bytes, body: bytes, *lines: bytes) -> bytes:
    return req(target, b"Content-Length: %d" % len(body), *lines, method=b"POST", body=body)


CHUNKED_SMUGGLED = b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"
EXPECT = b"Expect: 100-continue"

CASES = [
    # -- pipelining: answers in request order, in one stream -------------------------------
    Case("pipeline-three", req(b"/1") + req(b"/2") + req(b"/3"), (200, 200, 200), False,
         (b"GET /1 0", b"GET /2 0", b"GET /3 0")),
    Case("pipeline-bodies", post(b"/1", b"aa") + req(b"/2") + post(b"/3", b"ccc"),
         (200, 200, 200), False, (b"POST /1 2", b"GET /2 0", b"POST /3 3")),
    Case("pipeline-split-everywhere", [b"GET /1 HT", b"TP/1.1\r\nHo", b"st: a\r\n\r\nGET",
                                       b" /2 HTTP/1.1\r\nHost: a\r\n", b"\r\n"],
         (200, 200), False, (b"GET /1 0", b"GET /2 0")),
    Case("pipeline-then-garbage", req(b"/1") + b"GARBAGE\x00\r\n\r\n", (200, 400), True),
    Case("pipeline-then-bad-host", req(b"/1") + req(b"/2", b"Host: b"), (200, 400), True),
    Case("pipeline-then-smuggle-attempt", req(b"/1") + post(b"/2", b"abc", b"Content-Length: 3")
         + SMUGGLED, (200, 400), True),
    Case("pipeline-then-too-long", req(b"/1") + req(b"/" + b"x" * 2000), (200, 414), True),
    Case("pipeline-then-broken-head", req(b"/1") + b"GET /2 HTTP/1.1\r\nHo", (200, 400), True),
    # -- Connection: close (RFC 9112 §9.6): later bytes are never read as requests ---------
    Case("close-then-more", req(b"/1", b"Connection: close") + req(b"/2") + SMUGGLED,
         (200,), True, (b"GET /1 0",)),
    Case("close-token-case", req(b"/1", b"Connection: CLOSE") + SMUGGLED, (200,), True),
    Case("close-in-list", req(b"/1", b"Connection: foo, close") + SMUGGLED, (200,), True),
    Case("close-in-middle", req(b"/1") + req(b"/2", b"Connection: close") + req(b"/3")
         + SMUGGLED, (200, 200), True, (b"GET /1 0", b"GET /2 0")),
    Case("close-then-garbage", req(b"/1", b"Connection: close") + b"\x00\x01garbage",
         (200,), True),
    Case("close-with-body", post(b"/1", SMUGGLED, b"Connection: close") + SMUGGLED,
         (200,), True),
    Case("http10-then-more", req(b"/1", version=b"HTTP/1.0") + SMUGGLED, (200,), True),
    Case("http10-keep-alive", req(b"/1", b"Connection: keep-alive", version=b"HTTP/1.0"),
         (200,), False),
    # -- a body the handler never reads is still consumed as a body ------------------------
    Case("unread-cl-body", post(b"/noread", SMUGGLED), (200,), False, (b"POST /noread unread",)),
    Case("unread-cl-body-split", [req(b"/noread", b"Content-Length: %d" % len(SMUGGLED),
                                      method=b"POST"), SMUGGLED[:10], SMUGGLED[10:]],
         (200,), False),
    Case("unread-chunked-body", req(b"/noread", b"Transfer-Encoding: chunked", method=b"POST",
                                    body=CHUNKED_SMUGGLED), (200,), False),
    Case("unread-body-then-pipeline", post(b"/noread", SMUGGLED) + req(b"/2"), (200, 200),
         False, (b"POST /noread unread", b"GET /2 0")),
    Case("unread-bad-chunked-body", req(b"/noread", b"Transfer-Encoding: chunked",
                                        method=b"POST", body=b"zz\r\n" + SMUGGLED),
         (200,), True, close_header=False),
    Case("unread-body-too-large", req(b"/noread", b"Transfer-Encoding: chunked",
                                      method=b"POST", body=b"ffff\r\n" + b"x" * 70000),
         (200,), True, close_header=False),
    # -- Expect (RFC 9110 §10.1.1) -------------------------------------------------------
    # The body came with the head: 100 Continue may be omitted (RFC 9110 §10.1.1); see
    # test_expect_continue_waits_for_the_interim_response for the real exchange.
    Case("expect-continue-body-sent", post(b"/e", b"abc", EXPECT), (200,), False,
         (b"POST /e 3",)),
    Case("expect-continue-case", post(b"/e", b"abc", b"Expect: 100-Continue"), (200,), False),
    Case("expect-continue-unread", post(b"/noread", SMUGGLED, EXPECT), (200,), False),
    Case("expect-continue-no-body", req(b"/e", EXPECT), (200,), False),
    Case("expect-continue-http10", req(b"/e", EXPECT, b"Content-Length: 3", method=b"POST",
                                       body=b"abc", version=b"HTTP/1.0"), (200,), True),
    Case("expect-continue-chunked", req(b"/e", EXPECT, b"Transfer-Encoding: chunked",
                                        method=b"POST", body=b"3\r\nabc\r\n0\r\n\r\n"),
         (200,), False),
    Case("expect-unknown", post(b"/e", b"abc", b"Expect: foo"), (417,), True),
    Case("expect-list", post(b"/e", b"abc", b"Expect: 100-continue, foo"), (417,), True),
    Case("expect-empty", post(b"/e", b"abc", b"Expect:"), (417,), True),
    Case("expect-200-ok", post(b"/e", b"abc", b"Expect: 200-ok"), (417,), True),
    Case("expect-continue-too-large", req(b"/e", EXPECT, b"Content-Length: 99999999",
                                          method=b"POST"), (413,), True),
    # -- Upgrade that is not taken: the connection goes on as HTTP/1.1 (RFC 9110 §7.8) -----
    Case("upgrade-ignored", req(b"/1", b"Connection: upgrade", b"Upgrade: foo/1"), (200,),
         False, (b"GET /1 0",)),
    Case("upgrade-websocket-not-routed", req(b"/1", b"Connection: Upgrade",
                                              b"Upgrade: websocket",
                                              b"Sec-WebSocket-Version: 13",
                                              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
         (200,), False),
    Case("upgrade-h2c", req(b"/1", b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c",
                            b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"), (200,), False),
    Case("upgrade-then-pipeline", req(b"/1", b"Connection: upgrade", b"Upgrade: foo")
         + req(b"/2"), (200, 200), False, (b"GET /1 0", b"GET /2 0")),
    # httptools stops at the head of an upgrade request, so its body cannot be framed: 400.
    Case("upgrade-with-body", post(b"/1", SMUGGLED, b"Connection: upgrade", b"Upgrade: foo"),
         (400,), True),
    Case("upgrade-with-chunked-body", req(b"/1", b"Connection: upgrade", b"Upgrade: foo",
                                          b"Transfer-Encoding: chunked", method=b"POST",
                                          body=CHUNKED_SMUGGLED), (400,), True),
    Case("upgrade-with-empty-body", post(b"/1", b"", b"Connection: upgrade", b"Upgrade: foo"),
         (200,), False, (b"POST /1 0",)),
    Case("upgrade-header-without-connection", req(b"/1", b"Upgrade: foo"), (200,), False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sequencing(hostile_server, case: Case) -> None:
    run_case(hostile_server.port, case)


@pytest.mark.parametrize("framing", [b"Content-Length: 3", b"Transfer-Encoding: chunked"])
def test_expect_continue_waits_for_the_interim_response(hostile_server, framing) -> None:
    """The client sends the head only, waits for 100 Continue, then sends the body."""
    body = b"abc" if framing.startswith(b"Content") else b"3\r\nabc\r\n0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", hostile_server.port), timeout=5) as s:
        s.sendall(req(b"/e", EXPECT, framing, method=b"POST"))
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body + SENTINEL)
        data = read_until_close(s)
    responses, rest = parse_stream(data)
    assert rest == b""
    assert [(r.status, r.body) for r in responses] == [(200, b"POST /e 3"),
                                                       (200, b"GET /sentinel 0")]
