"""Tier 1: the sans-IO request parser, fed whole and one byte at a time."""

from __future__ import annotations

from typing import Any

import pytest

from corkweb.errors import ProtocolError
from corkweb.wire.limits import Limits
from corkweb.wire.parser import ParserSink, RequestHead, RequestParser


class Sink(ParserSink):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def on_request(self, head: RequestHead) -> None:
        self.events.append(("head", head))

    def on_body(self, chunk: bytes) -> None:
        if self.events and self.events[-1][0] == "body":
            self.events[-1] = ("body", self.events[-1][1] + chunk)
        else:
            self.events.append(("body", chunk))

    def on_request_end(self) -> None:
        self.events.append(("end",))


def parse(data: bytes, limits: Limits | None = None, bytewise: bool = False) -> Sink:
    sink = Sink()
    parser = RequestParser(sink, limits or Limits())
    if bytewise:
        for i in range(len(data)):
            parser.feed(data[i:i + 1])
    else:
        parser.feed(data)
    return sink


def both(data: bytes, limits: Limits | None = None) -> list[Any]:
    """Parse whole and byte by byte; the events must be the same."""
    whole = parse(data, limits).events
    bytewise = parse(data, limits, bytewise=True).events

    def norm(events: list[Any]) -> list[Any]:
        return [(e[0], vars_of(e[1])) if e[0] == "head" else e for e in events]

    assert norm(whole) == norm(bytewise)
    return whole


FIELDS = ("method", "url", "path", "query", "version", "keep_alive", "headers",
          "content_length", "chunked", "expect_continue", "upgrade")


def vars_of(head: RequestHead) -> dict[str, Any]:
    return {k: getattr(head, k) for k in FIELDS}


def rejects(data: bytes, status: int, limits: Limits | None = None) -> ProtocolError:
    for bytewise in (False, True):
        with pytest.raises(ProtocolError) as info:
            parse(data, limits, bytewise)
        assert info.value.status == status, (bytewise, info.value)
    return info.value


def test_simple_get() -> None:
    events = both(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Thing: v\r\n\r\n")
    assert [e[0] for e in events] == ["head", "end"]
    head = events[0][1]
    assert head.method == "GET"
    assert head.path == "/a/b"
    assert head.query == "x=1&y=2"
    assert head.url == "/a/b?x=1&y=2"
    assert head.version == "1.1"
    assert head.keep_alive is True
    assert head.headers == [(b"host", b"example.com"), (b"x-thing", b"v")]
    assert head.content_length is None and head.chunked is False and not head.has_body


def test_content_length_body() -> None:
    events = both(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    assert events[0][1].content_length == 5
    assert events[1] == ("body", b"hello")
    assert events[2] == ("end",)


def test_chunked_body_with_extension_and_trailer() -> None:
    data = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
    events = both(data)
    assert events[0][1].chunked is True
    assert events[1] == ("body", b"abcde")
    assert events[2] == ("end",)


def test_pipelined_requests_are_all_parsed_in_order() -> None:
    data = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(16))
    heads = [e[1].path for e in both(data) if e[0] == "head"]
    assert heads == [f"/{i}" for i in range(16)]


def test_http10_defaults_to_close_and_keep_alive_header() -> None:
    head = both(b"GET / HTTP/1.0\r\n\r\n")[0][1]
    assert head.version == "1.0" and head.keep_alive is False
    head = both(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0][1]
    assert head.keep_alive is True


def test_connection_close_stops_parsing_later_bytes() -> None:
    events = both(b"GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                  b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [e[1].path for e in events if e[0] == "head"] == ["/1"]


def test_expect_continue_flag() -> None:
    head = both(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                b"Content-Length: 1\r\n\r\nx")[0][1]
    assert head.expect_continue is True


def test_absolute_form_target_routes_on_its_path() -> None:
    head = both(b"GET http://example.com/p/q?z=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")[0][1]
    assert head.path == "/p/q" and head.query == "z=1"
    head = both(b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n")[0][1]
    assert head.path == "/"


def test_asterisk_form_for_options() -> None:
    head = both(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")[0][1]
    assert head.path == "*"


def test_upgrade_returns_offset_of_following_bytes() -> None:
    sink = Sink()
    parser = RequestParser(sink, Limits())
    data = (b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            b"\x81\x80")
    offset = parser.feed(data)
    assert offset is not None and data[offset:] == b"\x81\x80"
    assert sink.events[0][1].upgrade == b"websocket"


@pytest.mark.parametrize(
    "data,status",
    [
        # framing ambiguity: never guess (RFC 9112 §6.3)
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", 400),
        # syntax
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),  # obs-fold
        (b"GET / HTTP/1.1\nHost: a\n\n", 400),  # bare LF
        (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),  # bare CR
        (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", 400),  # NUL
        (b"GET / HTTP/1.1\r\nHost: a\x7fb\r\n\r\n", 400),  # DEL
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),  # space before colon
        (b"get / HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # methods are case-sensitive
        # versions and targets
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET /\r\n\r\n", 400),  # HTTP/0.9
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),  # h2 preface
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        # Host (RFC 9112 §3.2)
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400),
        # Expect
        (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417),
    ],
)
def test_rejections(data: bytes, status: int) -> None:
    rejects(data, status)


def test_limits_head_size_header_count_request_line_and_body() -> None:
    limits = Limits(max_head=200, max_headers=5, max_request_line=64, max_body=10)
    rejects(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, limits)
    rejects(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 300 + b"\r\n\r\n", 431, limits)
    many = b"".join(b"X-%d: v\r\n" % i for i in range(6))
    rejects(b"GET / HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n", 431, limits)
    rejects(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", 413, limits)
    chunked = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n")
    rejects(chunked, 413, limits)


def test_unfinished_huge_header_is_bounded_before_it_completes() -> None:
    limits = Limits(max_head=1024, max_request_line=256)
    parser = RequestParser(Sink(), limits)
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ")
    with pytest.raises(ProtocolError) as info:
        for _ in range(100):
            parser.feed(b"v" * 100)  # never a CRLF: llhttp keeps buffering it
    assert info.value.status == 431


def test_trailer_section_is_bounded() -> None:
    limits = Limits(max_trailer=64)
    data = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
            + b"".join(b"T%d: %s\r\n" % (i, b"v" * 20) for i in range(5)) + b"\r\n")
    rejects(data, 431, limits)


def test_reset_after_ignored_upgrade_parses_following_request() -> None:
    sink = Sink()
    parser = RequestParser(sink, Limits())
    data = (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
            b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    offset = parser.feed(data)
    assert offset is not None
    parser.reset()
    assert parser.feed(data[offset:]) is None
    assert [e[1].path for e in sink.events if e[0] == "head"] == ["/", "/next"]


def test_head_classes_with_a_constructor_of_their_own_are_refused() -> None:
    # The parser makes heads by calling their class with no arguments and then sets the fields:
    # a class that needs arguments, or builds its object itself, would break that silently.
    class WithInit(RequestHead):
        def __init__(self, method: str) -> None:
            self.method = method

    class WithNew(RequestHead):
        def __new__(cls) -> WithNew:
            return super().__new__(cls)

    for cls in (WithInit, WithNew):
        with pytest.raises(TypeError, match="must not define __init__ or __new__"):
            RequestParser(Sink(), Limits(), cls)
    RequestParser(Sink(), Limits(), type("Plain", (RequestHead,), {}))  # fields only: fine
