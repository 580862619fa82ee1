"""Tier 1: the parser's fast head path against its llhttp path, on the same input.

``RequestParser.feed`` takes complete plain request heads without llhttp, read by
``wire.plain.parse`` or found in ``wire.plain.CACHE``. It must be
invisible: for any input, split into reads anywhere, the sink sees the same requests (every
field of every head), the same bodies and ends, the same refusal (status and message) at the
same point, and the parser ends in the same state as when llhttp parses everything. The
generated input is mostly valid or nearly so (one part off), since that is where a fast path
that is too eager would differ; the hostile battery covers plain garbage.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corkweb.errors import ProtocolError
from corkweb.wire import plain
from corkweb.wire.limits import Limits
from corkweb.wire.parser import ParserSink, RequestHead, RequestParser

FIELDS = ("method", "url", "path", "query", "version", "keep_alive", "headers",
          "content_length", "chunked", "expect_continue", "upgrade")


class LlhttpOnly(RequestParser):
    """The same parser with the fast path off: llhttp parses every byte."""

    __slots__ = ()
    fast_heads = False


class Eager(RequestParser):
    """The parser trying its fast path on every read (no pause after a miss)."""

    __slots__ = ()
    fast_pause_max = 0


class CountingParser(RequestParser):
    """Counts the request heads that llhttp parsed (its on_headers_complete callback)."""

    __slots__ = ("llhttp_heads",)

    def __init__(self, sink: Any, limits: Limits) -> None:
        self.llhttp_heads = 0
        super().__init__(sink, limits)

    def on_headers_complete(self) -> None:
        self.llhttp_heads += 1
        super().on_headers_complete()


class EagerCounting(CountingParser):
    __slots__ = ()
    fast_pause_max = 0


class Recorder(ParserSink):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def on_request(self, head: RequestHead) -> None:
        self.events.append(("head", {k: getattr(head, k) for k in FIELDS}))

    def on_body(self, chunk: bytes) -> None:
        self.events.append(("body", bytes(chunk)))

    def on_request_end(self) -> None:
        self.events.append(("end",))


def run(cls: type[RequestParser], reads: list[bytes], limits: Limits) -> list[Any]:
    """Everything observable of parsing ``reads`` one after the other.

    An upgrade is treated as not taken, as HTTPConnection does when no handler takes it:
    the parser is reset and the bytes after the upgrade request are parsed as HTTP.
    """
    sink = Recorder()
    parser = cls(sink, limits)
    outcome: list[Any] = []
    try:
        for data in reads:
            while True:
                offset = parser.feed(data)
                outcome.append(("fed", len(data), offset, parser.closed, parser.in_head))
                if offset is None or parser.closed:
                    break
                parser.reset()
                data = data[offset:]
    except ProtocolError as exc:
        outcome.append(("refused", exc.status, exc.message))
    return sink.events + outcome


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)] or [b""]


def same(data: bytes, cuts: list[int], limits: Limits | None = None) -> list[Any]:
    limits = limits or Limits()
    reads = split(data, cuts)
    slow = run(LlhttpOnly, reads, limits)
    plain.clear()
    first = run(Eager, reads, limits)  # field sections never seen: left to llhttp
    assert first == slow, (reads, first, slow)
    fast = run(Eager, reads, limits)  # seen once: read by plain.read
    assert fast == slow, (reads, fast, slow)
    again = run(Eager, reads, limits)  # the same heads found in plain.CACHE
    assert again == slow, (reads, again, slow)
    plain.clear()
    paused = run(RequestParser, reads, limits)  # pausing after misses, as it serves
    assert paused == slow, (reads, paused, slow)
    return fast


# -- generators ---------------------------------------------------------------------------

METHODS = ["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
           "CONNECT", "get", "FOO", "PRI", "GET "]
TARGET_CHARS = "abz09/-._~!$&'()*+,;=:@%?" + '"{}|^`<>\\[]' + "#\x7f\x80 \t"
VERSIONS = ["HTTP/1.1"] * 6 + ["HTTP/1.0"] * 3 + ["HTTP/1.2", "HTTP/2.0", "HTTP/0.9",
                                                   "http/1.1", "HTTP/1.1 ", "HTTP/11"]
NAMES = ["Host", "host", "HOST", "Connection", "connection", "Content-Length",
         "Transfer-Encoding", "Expect", "Upgrade", "X-A", "Accept", "User-Agent", "x_y",
         "Bad Name", "", "Host ", "X-\x80", "Cookie"]
VALUES = ["bench", "example.com:8080", "[::1]:80", "a b", "a/b", "close", "Close", "keep-alive",
          "Keep-Alive", "upgrade", "keep-alive, upgrade", "0", "5", "chunked", "gzip, chunked",
          "100-continue", "websocket", "", " ", "v\t", "v  ", "\tv", "caf\xe9", "x\x7fy",
          "a\x00b", "*/*"]
SEPARATORS = [":", ": ", ": ", ":\t", " :", ":  "]
ENDS = ["\r\n"] * 12 + ["\n", "\r\n ", "\r\n\t", "\r"]


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(METHODS))
    target = draw(st.one_of(
        st.just("/plaintext"), st.just("/user/42?x=1&y=2"),
        st.text(alphabet=TARGET_CHARS, max_size=12).map(lambda t: "/" + t),
        st.sampled_from(["*", "http://a/b?c", "a.b:80", "", "plain"]),
    ))
    version = draw(st.sampled_from(VERSIONS))
    fields = draw(st.lists(st.tuples(
        st.sampled_from(NAMES), st.sampled_from(SEPARATORS),
        st.one_of(st.sampled_from(VALUES), st.text(alphabet="ab ,\t:/", max_size=6)),
        st.sampled_from(ENDS)), max_size=5))
    if draw(st.booleans()):
        fields.insert(0, ("Host", ": ", "bench", "\r\n"))
    head = f"{method} {target} {version}\r\n"
    head += "".join(f"{n}{s}{v}{e}" for n, s, v, e in fields)
    head += draw(st.sampled_from(["\r\n"] * 8 + ["\n", "", "\r"]))
    raw = head.encode("latin-1")
    # A body for heads that announce one (valid or not, llhttp decides what it means).
    raw += draw(st.sampled_from([b"", b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n"]))
    return raw


batches = st.lists(heads(), min_size=1, max_size=5).map(b"".join)
cut_lists = st.lists(st.integers(min_value=0, max_value=4096), max_size=4)
limit_sets = st.sampled_from([
    Limits(),
    Limits(max_headers=2),
    Limits(max_head=40),
    Limits(max_request_line=8),
    Limits(max_head=64, max_request_line=16, max_headers=3),
])

SETTINGS = settings(max_examples=600, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(batches, cut_lists, limit_sets, st.sampled_from([b"", b"\r\n", b"GE", b"GET / HT"]))
def test_same_as_llhttp(data: bytes, cuts: list[int], limits: Limits, tail: bytes) -> None:
    same(data + tail, cuts, limits)


PLAIN = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n"


@SETTINGS
@given(st.lists(st.sampled_from([
    PLAIN,
    b"GET /u/1?q=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: bench\r\nAccept: */*\r\nX-Empty:\r\nX-T: a\tb \r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: bench\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: bench\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"\r\n",
]), min_size=1, max_size=8).map(b"".join), cut_lists)
def test_valid_streams_same_as_llhttp(data: bytes, cuts: list[int]) -> None:
    """Realistic keep-alive streams: plain heads around bodies, upgrades and closes."""
    same(data, cuts)


# -- the fast path is taken where it should be ----------------------------------------------


def known(head: bytes = PLAIN) -> None:
    """Forget every head, then let the parser see ``head``'s fields once (a field section is
    read by the fast path from its second sight on)."""
    plain.clear()
    RequestParser(Recorder(), Limits()).feed(head)


def test_plain_pipelined_heads_skip_llhttp() -> None:
    known()
    parser = CountingParser(Recorder(), Limits())
    parser.feed(PLAIN * 16)
    assert parser.llhttp_heads == 0


def test_llhttp_is_made_only_when_a_read_needs_it() -> None:
    # An idle keep-alive connection whose heads the table knows holds no llhttp (~0.9 KiB).
    known()
    sink = Recorder()
    parser = RequestParser(sink, Limits())
    parser.feed(PLAIN)
    parser.feed(PLAIN * 3)
    assert not parser.holds_llhttp
    parser.feed(b"POST /x HTTP/1.1\r\nHost: bench\r\nContent-Length: 2\r\n\r\nab")
    assert parser.holds_llhttp
    assert sink.events[-2:] == [("body", b"ab"), ("end",)]
    parser.feed(PLAIN)
    assert [e[0] for e in sink.events].count("head") == 6
    parser.reset()  # a fresh llhttp state: made again when a read needs it
    assert not parser.holds_llhttp
    parser.release()
    assert not parser.holds_llhttp


def test_a_repeated_head_after_another_one_is_not_taken_for_it() -> None:
    # A run of equal heads is compared in place against the last one found in the table; a
    # different head in between must end the run, or the next equal head would be read as it.
    other = b"GET /u/1?q=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    data = PLAIN + PLAIN + other + PLAIN + other + other + PLAIN
    known(PLAIN + other)
    for reads in ([], [len(PLAIN) * 2 + 3]):  # whole, and cut inside the third head
        events = same(data, reads)  # equal to llhttp's, eager, from the table and pausing
        paths = [event[1]["path"] for event in events if event[0] == "head"]
        assert paths == ["/plaintext", "/plaintext", "/u/1", "/plaintext", "/u/1", "/u/1",
                         "/plaintext"]


def test_reads_of_one_head_each() -> None:
    # A read that is exactly one remembered keep-alive head takes the shortest way; one that
    # closes the connection, or a different one after it, the loop's.
    close = b"GET /bye HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    other = b"GET /u/1?q=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    known(PLAIN + other + close)
    data = PLAIN + other + PLAIN + close
    bounds = [len(PLAIN), len(PLAIN + other), len(PLAIN + other + PLAIN)]
    events = same(data, bounds)  # equal to llhttp's, eager, from the table and pausing
    heads = [(event[1]["path"], event[1]["keep_alive"]) for event in events
             if event[0] == "head"]
    assert heads == [("/plaintext", True), ("/u/1", True), ("/plaintext", True),
                     ("/bye", False)]


def test_a_field_section_seen_first_goes_to_llhttp() -> None:
    """A field section is checked by the regular expressions only from its second sight on:
    one never repeated (a unique cookie or trace id) costs llhttp's path, not both."""
    plain.clear()
    parser = EagerCounting(Recorder(), Limits())
    parser.feed(PLAIN)
    assert parser.llhttp_heads == 1
    parser.feed(PLAIN.replace(b"/plaintext", b"/other"))  # the same fields: now fast
    parser.feed(PLAIN)
    assert parser.llhttp_heads == 1
    for n in range(3):
        parser.feed(b"GET / HTTP/1.1\r\nHost: bench\r\nX-Trace: %d\r\n\r\n" % n)
    assert parser.llhttp_heads == 4


def test_the_fast_path_pauses_after_misses(monkeypatch: Any) -> None:
    """A connection whose heads never qualify stops paying for the look: after each miss the
    fast path waits twice as many reads (up to 64); one hit makes it eager again."""
    import corkweb.wire.parser as parser_module

    looks: list[int] = []
    read = parser_module.read_plain

    def counted(data: bytes, pos: int, limits: Limits) -> Any:
        looks.append(pos)
        return read(data, pos, limits)

    monkeypatch.setattr(parser_module, "read_plain", counted)
    plain.clear()
    parser = CountingParser(Recorder(), Limits())
    for n in range(200):  # a trace id of its own in every request: never plain-and-seen
        parser.feed(b"GET / HTTP/1.1\r\nHost: bench\r\nX-Trace: %d\r\n\r\n" % n)
    assert parser.llhttp_heads == 200
    # looked at reads 1, 3, 6, 11, 20, 37, 70, 135, 200: from then on every 65th
    assert len(looks) == 9
    known()
    looks.clear()
    parser = CountingParser(Recorder(), Limits())
    parser.feed(b"GET / HTTP/1.1\r\nHost: bench\r\nX-Trace: 1\r\n\r\n")  # a miss
    parser.feed(PLAIN)  # paused: llhttp
    parser.feed(PLAIN)  # looked at again: fast from now on
    parser.feed(PLAIN * 4)  # found by its first head's bytes, the rest without a look
    assert parser.llhttp_heads == 2
    assert len(looks) == 3


def test_after_a_body_the_next_read_is_fast_again() -> None:
    known()
    sink = Recorder()
    parser = CountingParser(sink, Limits())
    parser.feed(PLAIN + b"POST /p HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nhi" + PLAIN)
    assert parser.llhttp_heads == 2  # the POST, and what followed it in the same read
    parser.feed(PLAIN * 3)
    assert parser.llhttp_heads == 2
    assert [e[0] for e in sink.events].count("end") == 6


def test_a_head_split_across_reads_goes_to_llhttp_then_back() -> None:
    known()
    parser = EagerCounting(Recorder(), Limits())
    parser.feed(PLAIN[:10])
    parser.feed(PLAIN[10:])
    assert parser.llhttp_heads == 1
    parser.feed(PLAIN)
    assert parser.llhttp_heads == 1


def test_a_read_ending_inside_the_next_method_keeps_llhttp() -> None:
    """After a body, ``GE`` of the next request is in llhttp: the next read must go there."""
    sink = Recorder()
    parser = CountingParser(sink, Limits())
    parser.feed(b"POST /p HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nhiGE")
    parser.feed(PLAIN[2:])
    assert parser.llhttp_heads == 2
    assert sink.events[-2][1]["path"] == "/plaintext"


def test_fast_heads_match_llhttp_fields() -> None:
    data = (b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Thing: v  \r\n\r\n"
            b"OPTIONS /o HTTP/1.0\r\n\r\n")
    events = same(data, [])
    assert events[0] == ("head", {
        "method": "GET", "url": "/a/b?x=1&y=2", "path": "/a/b", "query": "x=1&y=2",
        "version": "1.1", "keep_alive": True,
        "headers": [(b"host", b"example.com"), (b"x-thing", b"v  ")],
        "content_length": None, "chunked": False, "expect_continue": False, "upgrade": None})
    assert events[2][1]["version"] == "1.0" and events[2][1]["keep_alive"] is False
    assert events[-1] == ("fed", len(data), None, True, False)  # HTTP/1.0: closes after


def test_limits_apply_on_the_fast_path() -> None:
    limits = Limits(max_headers=2, max_head=1024, max_request_line=64)
    for data, status in [
        (b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", 431),
        (b"GET /" + b"x" * 64 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\nA: " + b"v" * 1100 + b"\r\n\r\n", 431),
    ]:
        assert same(data, [], limits)[-1][:2] == ("refused", status)


BODY = b"POST /p HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nhi"


def test_llhttp_keeps_what_it_began() -> None:
    """Bytes of a message llhttp began are never taken from it by the fast path."""
    for tail in (b"G", b"GE", b"GET", b"\r", b"\n", b"\r\n", b"X",
                 b"GET /x HTTP/1.1\r\n", b"GET /x HTTP/1.1\r\nHost: a\r\n"):
        for first in (BODY + tail, PLAIN + BODY + tail, PLAIN[:-1]):
            same(first + PLAIN + PLAIN, [len(first)])
            same(first + PLAIN + PLAIN, [len(first), len(first) + len(PLAIN)])


def test_limits_at_their_edges() -> None:
    """Every size around each limit: the fast path refuses nothing llhttp accepts, and the
    reverse, and each refusal is llhttp's."""
    limits = Limits(max_head=64, max_request_line=16, max_headers=3)
    for n in range(0, 70):
        same(b"GET /" + b"t" * n + b" HTTP/1.1\r\nHost: a\r\n\r\n", [], limits)
        same(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * n + b"\r\n\r\n", [], limits)
        same(b"GET / HTTP/1.1\r\nHost: a\r\nX:" + b" " * n + b"v\r\n\r\n", [], limits)
        same(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: v\r\n" * (n % 6) + b"\r\n", [], limits)
        same(b"GET / HTTP/1.1\r\nHost:a\r\nX:" + b"v" * n + b"\r\n\r\n", [], limits)


def test_every_byte_in_every_part() -> None:
    """Each byte value in the target, a header name and a header value, at the start, inside
    and at the end: the fast path's character classes never take what llhttp refuses or
    would read differently."""
    for byte in range(256):
        c = bytes([byte])
        for data in (
            b"GET /a" + c + b"b?c" + c + b"d HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /" + c + b" HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX" + c + b"y: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n" + c + b": v\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a" + c + b"b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: " + c + b"\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX:" + c + b"v" + c + b"\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h" + c + b"\r\n\r\n",
        ):
            same(data + PLAIN, [])


def test_heads_taken_before_a_partial_one_do_not_count_towards_its_size() -> None:
    """As when llhttp completes heads in a read: only the bytes of reads that complete no
    head count towards the bound on a head spanning reads."""
    limits = Limits(max_head=64, max_request_line=16)
    partial = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n"
    for count in range(1, 4):
        same(PLAIN * count + partial + b"X-B: 2\r\n\r\n", [len(PLAIN) * count + len(partial)],
             limits)


def test_a_head_read_under_other_limits_is_read_again() -> None:
    """A remembered head was checked against the limits of its server: another's are
    applied afresh (one process may serve apps with different limits)."""
    data = b"GET /abcdef HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"
    plain.clear()
    for limits in (Limits(), Limits(max_headers=1), Limits(max_request_line=4),
                   Limits(max_head=8), Limits()):
        # Eager: the second read is remembered, the third comes from the table; each read
        # is one head (the shortest way) or two (the loop).
        for reads in ([data] * 3, [data * 2] * 3):
            fast = run(Eager, reads, limits)
            assert fast == run(LlhttpOnly, reads, limits)


def test_connection_values() -> None:
    for values in (["close"], ["keep-alive"], ["Keep-Alive"], ["CLOSE"], ["upgrade"],
                   ["keep-alive", "close"], ["close", "keep-alive"], ["close", "close"],
                   ["keep-alive, close"], ["te"], [""]):
        for version in (b"1.1", b"1.0"):
            fields = b"".join(b"Connection: " + v.encode() + b"\r\n" for v in values)
            head = b"GET / HTTP/" + version + b"\r\nHost: a\r\n" + fields + b"\r\n"
            same(head + PLAIN, [])


def test_long_heads_are_not_remembered() -> None:
    plain.clear()
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * plain.MAX_LEN + b"\r\n\r\n"
    same(data + PLAIN, [])
    assert data not in plain.CACHE
