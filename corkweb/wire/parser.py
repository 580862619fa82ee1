"""HTTP/1.1 request parsing: httptools (llhttp) plus the checks llhttp leaves to the server.

llhttp in its strict mode already refuses most ambiguous framing (Content-Length together with
Transfer-Encoding, duplicate or malformed Content-Length, bad chunk sizes, bare CR or LF,
obs-fold, invalid bytes in names and values). This module adds what RFC 9112 asks of a server
on top: the version, the Host rules, the form of the request target, ``Expect``, and the size
limits. Every refusal is a :class:`~corkweb.errors.ProtocolError` carrying the status to answer;
the caller answers it and closes the connection, so a rejected request can never desync the
stream.

The parser is sans-IO: :meth:`RequestParser.feed` takes bytes and calls the sink's
``on_request(head)``, ``on_body(chunk)`` and ``on_request_end()``. A request is handed to the
sink as soon as its head is complete, before its body arrives (the body streams after it).

Between two messages, complete *plain* heads (see :mod:`corkweb.wire.plain`) skip llhttp: they
are looked up by their bytes, or read by a strict regular expression that accepts less than
llhttp does. Anything else is fed to llhttp from that message on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NoReturn, Protocol

import httptools

from ..errors import ProtocolError
from .limits import Limits
from .plain import CACHE, MAX_LEN, VALID_HOSTS, valid_host
from .plain import read as read_plain
from .speedups import core

__all__ = ["RequestHead", "RequestParser", "ParserSink"]


def _new_llhttp(sink: object) -> httptools.HttpRequestParser:
    # llhttp stays strict about versions: it accepts only 0.9, 1.0, 1.1 and 2.0 and refuses any
    # other well-formed HTTP/x.y with "Invalid HTTP version", which feed() answers 505 (RFC 9110
    # §15.6.6). Keeping that set closed is what lets on_headers_complete infer HTTP/1.1 without
    # asking llhttp for the version string.
    return httptools.HttpRequestParser(sink)

# Methods decoded once; anything else llhttp accepted is decoded on the fly.
_METHODS = {
    m.encode(): m
    for m in (
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"
    )
}
_VERSIONS = {"1.1": "1.1", "1.0": "1.0"}

# absolute-form target (RFC 9112 §3.2.2): scheme "://" authority [path-abempty] [ "?" query ]
_ABSOLUTE_RE = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?")

# Header names the parser must look at; the rest are stored untouched.
_HOST, _CL, _TE = b"host", b"content-length", b"transfer-encoding"
_EXPECT, _UPGRADE, _CONNECTION = b"expect", b"upgrade", b"connection"
_WATCHED = frozenset((_HOST, _CL, _TE, _EXPECT, _UPGRADE, _CONNECTION))

# PERF: the head table's lookup bound once rather than looked up on the table at each call
# (the table is only ever cleared in place, so the bound method stays its): plaintext 25.4k
# -> 24.9k, JSON 26.6k -> 26.3k instructions a request (benchmarks.instructions_ab).
_cache_get = CACHE.get


class _PyHeadBase:
    """The fields only some requests have, as class-level defaults the parser overrides when it
    saw them (the pure-Python twin of ``_speedups.HeadBase``, which sets them in C)."""

    content_length: int | None = None
    chunked = False
    expect_continue = False
    upgrade: bytes | None = None
    has_body = False


# PERF: with the C core (wire/speedups.py) a head's fields live at fixed offsets and a head
# seen before is built by one call, make_head(cls, entry): 16 pipelined, 14.2k -> 13.2k
# instructions a request, and 12.7k once the server's C core reads the fields at their
# offsets (in-process, callgrind).
if TYPE_CHECKING:
    HeadBase = _PyHeadBase
else:
    HeadBase = _PyHeadBase if core is None else core.HeadBase
_make_head = None if core is None else core.make_head
_same_at = None if core is None else core.same_at


class RequestHead(HeadBase):
    """What the wire knows of a request once its head is parsed.

    ``headers`` is a list of ``(lower-case name, value)`` byte pairs in arrival order; decoding
    is left to whoever asks for a header (most handlers never do). ``corkweb.request.Request``
    subclasses this class, so the parser builds the object handed to user code directly.
    """

    # PERF: no __init__: the parser makes a head by calling its class with no arguments (all
    # in C: 26 ns against 47 for object.__new__(cls) and 74 for a Python __init__, timeit) and
    # sets the seven fields every request has. The fields that only some requests have (a
    # body, Expect, Upgrade) start as HeadBase sets them, and the parser overrides them when
    # it saw them.
    #: The method, upper-case: ``"GET"``.
    method: str
    #: The request target as received (origin form, or the path of an absolute-form one).
    url: str
    #: ``url`` without the query string and fragment.
    path: str
    #: The query string, without its ``?`` (``""`` when there is none).
    query: str
    #: ``"1.1"`` or ``"1.0"``.
    version: str
    #: Whether the connection stays open after this request (RFC 9112 §9.3).
    keep_alive: bool
    headers: list[tuple[bytes, bytes]]
    content_length: int | None
    chunked: bool
    expect_continue: bool
    upgrade: bytes | None
    #: Whether a body follows the head (RFC 9112 §6.3): a non-zero Content-Length or chunked.
    #: PERF: a field the parser sets, not a property: the exchange reads it for every request
    #: (one class-level read instead of two, and no call; ~200 instructions a request).
    has_body: bool


class ParserSink(Protocol):
    """What :class:`RequestParser` calls as it parses."""

    def on_request(self, head: RequestHead) -> None: ...
    def on_body(self, chunk: bytes) -> None: ...
    def on_request_end(self) -> None: ...
    def on_whole_request(self, head: RequestHead) -> None:
        """A head with no body: ``on_request(head)`` then ``on_request_end()``, in one call
        (a sink may do both at once; subclass this protocol to inherit this default)."""
        self.on_request(head)
        self.on_request_end()


class RequestParser:
    """Feeds llhttp and enforces the server-side rules of RFC 9112 and the limits.

    ``feed(data)`` returns ``None``, or the offset in ``data`` where the bytes after an upgrade
    request begin (the caller either switches protocol or calls :meth:`reset` and feeds the
    rest). It raises :class:`ProtocolError` for anything it refuses.
    """

    __slots__ = (
        "_sink", "_limits", "_head_cls", "_parser", "_url", "_headers", "_head_size", "in_head",
        "_hosts", "_content_length", "_chunked", "_expect", "_upgrade",
        "_raw_head", "_body_size", "_trailer_size", "_closed", "_closing", "_head_ended",
        "_special", "_chunked_body", "_meta_size",
        "_fresh", "_chunk_mark", "_skip", "_backoff",
    )
    #: Whether complete plain heads at a message boundary skip llhttp (see ``feed``).
    #: Only the tests turn it off, to compare both paths on the same input.
    fast_heads = True
    #: The longest pause of the fast path after misses, in reads (see ``feed``); the tests set
    #: 0 to try it on every read.
    fast_pause_max = 64

    def __init__(
        self, sink: ParserSink, limits: Limits, head_cls: type[RequestHead] = RequestHead
    ) -> None:
        self._sink = sink
        self._limits = limits
        if (head_cls.__init__ is not RequestHead.__init__
                or head_cls.__new__ is not RequestHead.__new__):
            # The parser makes heads with no arguments and sets their fields (see RequestHead).
            raise TypeError(f"{head_cls.__name__} must not define __init__ or __new__")
        self._head_cls = head_cls
        self._closed = False
        self._closing = False
        #: True while part of a request head has been read but not all of it.
        self.in_head = False
        self._head_ended = False
        self._raw_head = 0
        #: True while a chunked body is being read; ``_meta_size`` counts the bytes of reads
        #: in it that carried no body byte and no complete trailer field (see ``feed``).
        self._chunked_body = False
        self._meta_size = 0
        #: True while llhttp sits between two messages: it has seen nothing of the next one
        #: (the only place where ``feed`` may take its input over and give it back).
        self._fresh = True
        self._chunk_mark = 0
        #: Reads at message boundaries left to llhttp before the fast path is tried again, and
        #: the length of the last such pause (see ``feed``).
        self._skip = 0
        self._backoff = 0
        self._reset_message()
        # PERF: llhttp is made when a read first needs it. A connection whose heads the table
        # knows never does, and an idle one then holds ~0.9 KiB less (python -m benchmarks
        # --workloads conn-memory: 2.47 -> 1.51 KiB per connection).
        self._parser: httptools.HttpRequestParser | None = None

    def reset(self) -> None:
        """Start over with a fresh llhttp state (after an upgrade that was not taken)."""
        self._parser = None  # a new one when a read needs it
        self._chunked_body = False
        self.in_head = False
        self._raw_head = 0
        self._fresh = True

    def close(self) -> None:
        """Stop parsing: every later ``feed`` is ignored (the connection is being closed)."""
        self._closed = True

    def release(self) -> None:
        """The connection is gone: close, and drop llhttp and the sink. Both point back here
        (llhttp calls this object, this object calls the sink), so keeping them would leave
        the connection and what hangs off it to the garbage collector instead of freeing it
        by reference counting the moment it ends. Not to be called from inside ``feed``."""
        self._closed = True
        self._parser = None
        del self._sink

    @property
    def holds_llhttp(self) -> bool:
        """Whether llhttp has been made for this connection (only a read that needs it makes
        it: one whose heads are all in the plain-head table does not)."""
        return self._parser is not None

    @property
    def closed(self) -> bool:
        """True once a request that ends the connection was parsed; later bytes are ignored."""
        return self._closed

    def _reset_message(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] | None = None
        self._head_size = 0
        self._hosts = 0
        self._special = False
        self._content_length: int | None = None
        self._chunked = False
        self._expect = False
        self._upgrade: bytes | None = None
        self._body_size = 0
        self._trailer_size = 0

    # -- input ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> int | None:
        """Parse ``data``; see the class docstring for the result and errors."""
        if self._closed:
            return None
        if self._chunked_body:
            return self._feed_chunked(data)
        if self._fresh and self.fast_heads:
            if self._skip:
                # PERF: the fast path missed the first head of a recent read on this
                # connection. Looking costs ~15k instructions for a browser-sized head that
                # turns out not to be plain or never seen (the search for its end, hashing
                # it, the request-line expression) on top of llhttp's ~59k; pausing after
                # each miss, twice as long each time up to 64 reads, brings that to under
                # 1 % on a connection whose heads never qualify (every one with a trace id of
                # its own, or a body), while one whose heads repeat is fast again after one
                # read.
                self._skip -= 1
                return self._feed_llhttp(data, 0)
            # The fast head path (see wire.plain): between two messages only, so llhttp never
            # misses a byte of a message it has begun. Each complete plain head is handed to
            # the sink as llhttp's callbacks would hand it, and the loop goes on with the next
            # pipelined one; llhttp gets the bytes from the first message that is not plain (a
            # partial head included), so every refusal stays its and on_headers_complete's.
            # PERF: a plain head is looked up by its bytes: the whole read first (one request
            # per read), then as long as the head before it (pipelining), and only then is the
            # end of the head searched for. Instructions per request (python -m
            # benchmarks.instructions_ab): plaintext 37.1k -> 28.4k, JSON 41.1k -> 32.5k, route
            # parameter 48.9k -> 40.3k, 16 pipelined 30.6k -> 21.9k. A field section seen for
            # the first time is left to llhttp (wire.plain says why), and the look is paused
            # after misses (above): heads whose fields never repeat cost what llhttp's path
            # costs (a browser-like head with a cookie of its own: 58.8k against 58.0k
            # instructions, the parser alone); one seen before 7.8k, a browser-like one 8.5k
            # (from 68.5k). Inlined here rather than a method of its own: plaintext 25.7k -> 25.2k
            # (the connection fed in-process).
            limits = self._limits
            size = len(data)
            # (A read longer than any remembered head is not hashed: that costs ~1.5
            # instructions a byte.)
            entry = _cache_get(data) if size <= MAX_LEN else None
            if entry is not None and entry[0] is limits and entry[6]:  # [6]: keep-alive
                # PERF: the read is one keep-alive plain head seen before, the common case:
                # the loop below without its set-up: plaintext 26.2k -> 24.9k instructions a
                # request (in-process, callgrind).
                if self._backoff:
                    self._backoff = 0
                if _make_head is not None:
                    head = _make_head(self._head_cls, entry)
                else:
                    head = self._head_cls()
                    _, head.method, head.url, head.path, head.query, head.version, \
                        head.keep_alive, headers = entry
                    head.headers = list(headers)  # the request's own: a handler may change it
                self._sink.on_whole_request(head)
                return None
            sink = self._sink
            cls = self._head_cls
            pos = 0
            guess = size if entry is not None else 0  # a miss is not looked up twice
            last = b""  # the bytes of the head last found in the table (this read)
            step = 0  # their length
            while True:
                if last and (data[pos:pos + step] == last if _same_at is None
                             else _same_at(data, pos, last)):
                    # PERF: the same head again, as pipelined requests often are: compared
                    # instead of hashed and looked up (the entry is the one already found):
                    # 16 pipelined, 21.1k -> 20.3k instructions a request. A slice and ==, not
                    # startswith(last, pos), whose argument parsing costs ~300 instructions
                    # more: 19.1k -> 18.8k; with the C core, its same_at compares in place:
                    # 16 pipelined, 12.6k -> 12.0k.
                    pos += step
                elif (entry := _cache_get(
                        raw := data[pos:pos + guess] if guess else b"")) is not None \
                        and entry[0] is limits:
                    step = len(raw)  # shorter than the guess at the end of the read
                    pos += step
                    last = raw
                else:
                    found = read_plain(data, pos, limits)
                    if found is None:
                        if not pos:
                            self._skip = self._backoff = min(2 * self._backoff or 1,
                                                             self.fast_pause_max)
                        return self._feed_llhttp(data, pos)
                    entry, end = found
                    guess = end - pos
                    pos = end
                    last = b""  # ``entry`` is no longer the one found for ``last``
                if self._backoff:
                    self._backoff = 0
                if _make_head is not None:
                    head = _make_head(cls, entry)
                    keep_alive = head.keep_alive
                else:
                    head = cls()
                    _, head.method, head.url, head.path, head.query, head.version, keep_alive, \
                        headers = entry  # type: ignore[misc]  # never None here (see ``last``)
                    head.keep_alive = keep_alive
                    head.headers = list(headers)  # the request's own: a handler may change it
                if not keep_alive:
                    # As on_message_complete: what follows a closing request is never parsed
                    # (closed before the end is reported, as there).
                    sink.on_request(head)
                    self._closed = True
                    sink.on_request_end()
                    return None
                sink.on_whole_request(head)
                if pos == size:
                    return None
        return self._feed_llhttp(data, 0)

    def _feed_llhttp(self, data: bytes, start: int) -> int | None:
        """Feed ``data[start:]`` to llhttp (``start`` > 0: the fast path took the heads before)."""
        self._fresh = False
        # Heads that the fast path completed in this read count as heads llhttp completed.
        self._head_ended = start > 0
        parser = self._parser
        if parser is None:
            parser = self._parser = _new_llhttp(self)
        try:
            parser.feed_data(memoryview(data)[start:] if start else data)
        except httptools.HttpParserUpgrade as exc:
            return int(exc.args[0]) + start
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, Exception):
                raise cause from None
            raise  # pragma: no cover - a BaseException is re-raised by httptools itself
        except httptools.HttpParserInvalidMethodError as exc:
            raise ProtocolError(400, f"malformed request line: {exc}") from None
        except httptools.HttpParserError as exc:
            if self._closed:
                return None  # llhttp refuses bytes after `Connection: close`; we drop them
            if str(exc) == "Invalid HTTP version":  # a well-formed HTTP/x.y we do not speak
                raise ProtocolError(505, "only HTTP/1.0 and HTTP/1.1 are supported") from None
            raise ProtocolError(400, f"malformed request: {exc}") from None
        if self._fresh and data[-1:] != b"\n":
            # The last message ended and only CR or LF followed (llhttp skips empty lines
            # between messages); unless the read ended on LF, leave llhttp the next read.
            self._fresh = False
        if self._head_ended:
            # Bytes of the next head that came in this same read are not counted below; the
            # precise counters of on_url/on_header still apply to them.
            self._raw_head = 0
        elif self.in_head:
            # llhttp buffers a header line it has not finished inside httptools, where the
            # callbacks cannot see it: bound the raw bytes of a head that spans reads too.
            # Counted after parsing, only when no head ended in this read: counted before,
            # a large read of many pipelined requests that began mid-head was refused 431.
            self._raw_head += len(data)
            if self._raw_head > self._limits.max_head + self._limits.max_request_line:
                raise ProtocolError(431, "request head too large")
        return None

    def _feed_chunked(self, data: bytes) -> int | None:
        """``feed`` while a chunked body is read: bound chunk extensions and trailer lines.

        llhttp skips chunk extensions without buffering them, and httptools buffers a trailer
        field until its line ends: either could go on for ever. A read that delivers neither a
        body byte nor a complete trailer field carried only chunk-size lines, extensions,
        CRLFs or part of a trailer line; more than ``max_trailer`` such bytes in a row are
        refused (RFC 9112 §7.1.1 lets a server limit extensions).
        """
        mark = self._body_size + self._trailer_size
        result = self._feed_llhttp(data, 0)
        if self._chunked_body and not self._head_ended:  # still in the same body
            if self._body_size + self._trailer_size == mark:
                self._meta_size += len(data)
                if self._meta_size > self._limits.max_trailer:
                    raise ProtocolError(431, "chunk extension or trailer line too long")
            else:
                self._meta_size = 0
        return result

    # -- llhttp callbacks -----------------------------------------------------------------

    # PERF: no on_message_begin callback (one Python call less per request): the per-message
    # state is reset when a head completes, and on_url marks the start of the next head.

    def on_url(self, url: bytes) -> None:
        self.in_head = True
        self._fresh = False
        url = self._url + url if self._url else url
        if len(url) > self._limits.max_request_line:
            raise ProtocolError(414, "request target too long")
        self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            # A trailer field of a chunked body (RFC 9112 §7.1.2): bounded, then dropped.
            self._trailer_size += len(name) + len(value) + 4
            if self._trailer_size > self._limits.max_trailer:
                raise ProtocolError(431, "trailer section too large")
            return
        size = self._head_size + len(name) + len(value) + 4
        headers = self._headers
        if headers is None:
            headers = self._headers = []
        # PERF: the limits read through _limits, not copied into two slots of their own: 16
        # bytes less per connection (the parser drops from 240 to 224 bytes).
        limits = self._limits
        if size > limits.max_head or len(headers) >= limits.max_headers:
            raise ProtocolError(431, "request head too large" if size > limits.max_head
                                else "too many header fields")
        self._head_size = size
        name = name.lower()
        headers.append((name, value))
        if name == _HOST:
            self._hosts += 1
            if self._hosts > 1 or value not in VALID_HOSTS:
                self._check_host(value)
        elif name in _WATCHED:
            self._watch(name, value)

    def _check_transfer_encoding(self, value: bytes) -> None:
        """Only ``chunked`` alone is accepted, decided here, before the request is dispatched.

        llhttp checks that chunked is the final coding only *after* on_headers_complete (the
        handler would already run), and it lets ``gzip, chunked`` through, whose body corkweb
        would hand over still gzipped. RFC 9112 §6.3: chunked not final -> 400; §6.1: a coding
        the server does not implement -> 501; chunked twice (over one or two fields) -> 400.
        """
        if self._chunked:
            raise ProtocolError(400, "more than one Transfer-Encoding header")
        codings = [c.strip(b" \t") for c in value.lower().split(b",")]
        if codings == [b"chunked"]:
            if value.endswith(b"\t"):
                raise ProtocolError(400, "invalid Transfer-Encoding")  # as llhttp would, later
            return
        if codings[-1] == b"chunked" and codings.count(b"chunked") == 1 and b"" not in codings:
            raise ProtocolError(501, "transfer codings other than chunked are not supported")
        raise ProtocolError(400, "invalid Transfer-Encoding")

    def _check_host(self, value: bytes) -> None:
        if self._hosts > 1:
            raise ProtocolError(400, "more than one Host header")  # RFC 9112 §3.2
        if not valid_host(value):
            raise ProtocolError(400, "invalid Host header")

    def _watch(self, name: bytes, value: bytes) -> None:
        self._special = True
        if name == _CL:
            # llhttp has checked the digits and refused duplicates by now.
            self._content_length = int(value)
        elif name == _TE:
            self._check_transfer_encoding(value)
            self._chunked = True
        elif name == _EXPECT:
            if value.strip().lower() != b"100-continue":
                raise ProtocolError(417, "unsupported Expect value")  # RFC 9110 §10.1.1
            self._expect = True
        elif name == _UPGRADE:
            self._upgrade = value.strip().lower()
        # Connection: llhttp interprets it; watching it only marks the message as special, so
        # that on_headers_complete asks llhttp for the version (see there).

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._head_ended = True
        parser = self._parser
        assert parser is not None  # llhttp is what calls this
        keep_alive = parser.should_keep_alive()
        special = self._special
        version: str | None
        if keep_alive and not special:
            # PERF: strict llhttp speaks 0.9, 1.0, 1.1 and 2.0 only, and keeps a connection alive
            # without a Connection header only when the minor version is above 0: this is
            # HTTP/1.1. get_http_version() formats a string in httptools: 1 µs per request saved.
            version = "1.1"
        else:
            version = _VERSIONS.get(parser.get_http_version())
            if version is None:
                self._bad_version(parser.get_http_version())
        raw_method = parser.get_method()
        if raw_method == b"GET":  # PERF: most requests; no hash of a new bytes object
            method = "GET"
        else:
            method = _METHODS.get(raw_method) or raw_method.decode("ascii")
            if method == "CONNECT":
                # After CONNECT come tunnel bytes, never HTTP: the answer closes the connection
                # (the parser ignores what follows), so it must say so.
                keep_alive = False
        url = self._url
        if url[0] != 47:  # not "/": asterisk-, authority- or absolute-form
            url = self._other_target_form(method, url)
        if self._hosts == 0 and version == "1.1":
            raise ProtocolError(400, "missing Host header")  # RFC 9112 §3.2
        if special:
            self._check_framing(version)
        try:
            target = url.decode("ascii")
        except UnicodeDecodeError:
            target = url.decode("utf-8", "surrogateescape")
        if "?" in target:
            path, _, query = target.partition("?")
        else:
            path, query = target, ""
        if "#" in target:  # a fragment is never sent on purpose; drop it
            path = path.partition("#")[0]
            query = query.partition("#")[0]
        headers = self._headers
        # PERF: the fields set here, on an object made by calling its class with no arguments
        # (see RequestHead): a Python __init__ re-enters the interpreter from C (type_call,
        # slot_tp_init): 2-3k instructions per request (plaintext, one connection fed
        # in-process under callgrind, median of three hash seeds: 38.5k -> 35.1k).
        head = self._head_cls()
        head.method = method
        head.url = target
        head.path = path
        head.query = query
        head.version = version
        head.keep_alive = keep_alive
        head.headers = headers if headers is not None else []
        if special:  # an Upgrade header makes a message special too (see _watch)
            upgrade = self._upgrade
            if upgrade is not None:
                if not parser.should_upgrade():
                    # "Upgrade" without "Connection: upgrade" is only informative
                    upgrade = None
                elif self._chunked or self._content_length:
                    # httptools makes llhttp stop at the head of an upgrade request: its body
                    # would come back as the "next request" if the upgrade is not taken (a
                    # desync). RFC 9110 §7.8 lets a server ignore Upgrade, not misframe the
                    # body: refuse.
                    raise ProtocolError(400, "an Upgrade request with a body is not supported")
            if self._content_length is not None:
                head.content_length = self._content_length
                if self._content_length:
                    head.has_body = True
            if self._chunked:
                head.chunked = True
                head.has_body = True
            if self._expect:
                head.expect_continue = True
            if upgrade is not None:
                head.upgrade = upgrade
        self._closing = not keep_alive
        # PERF: reset only what this message changed (most have no body and no special header).
        self._url = b""
        # None until the next header: an idle keep-alive connection holds no empty list.
        self._headers = None
        self._head_size = 0
        self._hosts = 0
        if special:
            self._chunked_body = self._chunked
            self._meta_size = 0
            self._reset_message()
        self._sink.on_request(head)

    @staticmethod
    def _bad_version(v: str) -> NoReturn:
        if v.startswith("0."):
            raise ProtocolError(400, "HTTP/0.9 requests are not supported")
        raise ProtocolError(505, f"HTTP/{v} is not supported")

    def _check_framing(self, version: str) -> None:
        if self._chunked and version == "1.0":
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")  # RFC 9112 §6.1
        if self._expect and version == "1.0":
            self._expect = False  # RFC 9110 §10.1.1: a 1.0 client never gets 100 Continue
        if self._content_length is not None and self._content_length > self._limits.max_body:
            raise ProtocolError(413, "request body too large")

    def _other_target_form(self, method: str, url: bytes) -> bytes:
        """The target is not origin-form: accept the forms RFC 9112 §3.2 allows for ``method``."""
        if url == b"*":
            if method != "OPTIONS":
                raise ProtocolError(400, "asterisk-form target is only valid for OPTIONS")
            return url
        if method == "CONNECT":
            return url  # authority-form; the app answers it (405 unless it routes CONNECT)
        m = _ABSOLUTE_RE.fullmatch(url)
        if m is None or m.group(1) == b"":
            raise ProtocolError(400, "invalid request target")
        # absolute-form: route on its path; an empty path means "/" (RFC 9112 §3.2.2).
        return (m.group(2) or b"/") + (m.group(3) or b"")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limits.max_body:
            raise ProtocolError(413, "request body too large")
        self._sink.on_body(body)

    # PERF: the end of a chunked body is seen from the chunk callbacks, which llhttp calls
    # for chunked bodies only; clearing the flag in on_message_complete cost every request
    # ~300 instructions.
    def on_chunk_header(self) -> None:
        self._chunk_mark = self._body_size

    def on_chunk_complete(self) -> None:
        if self._body_size == self._chunk_mark:  # the last (zero-size) chunk and its trailers
            self._chunked_body = False

    def on_message_complete(self) -> None:
        # Between two messages again, unless bytes of the next one follow in this read: any
        # such bytes but CR and LF reach on_url (which clears this) or are refused before the
        # read can end on LF, which is what _feed_llhttp checks.
        self._fresh = True
        if self._closing:
            self._closed = True
        self._sink.on_request_end()
