"""Message framing: Content-Length, Transfer-Encoding, chunks (RFC 9112 §6, §7).

A framing disagreement between two HTTP agents is what request smuggling is made of, so
anything ambiguous is answered 400 and the connection closed; the body of each refused case
carries a request (``SMUGGLED``) that must never be answered.
"""

from __future__ import annotations

import logging

import pytest

from .helpers import SMUGGLED, Case, run_case

P = b"POST /f HTTP/1.1\r\nHost: a\r\n"
CHUNKS = b"3\r\nabc\r\n0\r\n\r\n"


def cl(value: bytes, body: bytes = b"abc") -> bytes:
    return P + b"Content-Length: " + value + b"\r\n\r\n" + body


def te(value: bytes, body: bytes = CHUNKS) -> bytes:
    return P + b"Transfer-Encoding: " + value + b"\r\n\r\n" + body


def chunked(body: bytes) -> bytes:
    return P + b"Transfer-Encoding: chunked\r\n\r\n" + body


CASES = [
    # -- both framings (RFC 9112 §6.3 point 3: reject, never pick one) ---------------------
    Case("cl-then-te", P + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
         + SMUGGLED, (400,), True),
    Case("te-then-cl", P + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
         + SMUGGLED, (400,), True),
    Case("te-then-cl-0", P + b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"
         + b"0\r\n\r\n" + SMUGGLED, (400,), True),
    Case("cl-te-gzip", P + b"Content-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\nabc",
         (400,), True),
    # -- Content-Length ----------------------------------------------------------------------
    Case("cl-valid", cl(b"3"), (200,), False, (b"POST /f 3",)),
    Case("cl-zero", cl(b"0", b""), (200,), False, (b"POST /f 0",)),
    Case("cl-leading-zeros", cl(b"003"), (200,), False, (b"POST /f 3",)),
    Case("cl-ows", cl(b" \t3 \t"), (200,), False, (b"POST /f 3",)),
    Case("cl-body-is-a-request", cl(b"%d" % len(SMUGGLED), SMUGGLED), (200,), False,
         (b"POST /f %d" % len(SMUGGLED),)),
    Case("cl-on-get", b"GET /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", (200,),
         False, (b"GET /f 3",)),
    Case("cl-duplicate-same", P + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
         + SMUGGLED, (400,), True),
    Case("cl-duplicate-differ", P + b"Content-Length: 3\r\nContent-Length: 40\r\n\r\nabc"
         + SMUGGLED, (400,), True),
    Case("cl-duplicate-case", P + b"content-length: 3\r\nCONTENT-LENGTH: 3\r\n\r\nabc",
         (400,), True),
    Case("cl-list-same", cl(b"3, 3"), (400,), True),
    Case("cl-list-differ", cl(b"3, 40"), (400,), True),
    Case("cl-trailing-comma", cl(b"3,"), (400,), True),
    Case("cl-plus", cl(b"+3"), (400,), True),
    Case("cl-minus", cl(b"-3"), (400,), True),
    Case("cl-hex", cl(b"0x3"), (400,), True),
    Case("cl-empty", cl(b""), (400,), True),
    Case("cl-inner-space", cl(b"1 0"), (400,), True),
    Case("cl-letter", cl(b"3a"), (400,), True),
    Case("cl-decimal", cl(b"3.0"), (400,), True),
    Case("cl-overflow-u64", cl(b"18446744073709551617"), (400,), True),
    Case("cl-overflow-long", cl(b"9" * 40), (400,), True),
    Case("cl-nul", cl(b"3\x00"), (400,), True),
    Case("cl-vtab", cl(b"3\x0b"), (400,), True),
    Case("cl-obs-fold", P + b"Content-Length:\r\n 3\r\n\r\nabc", (400,), True),
    Case("cl-space-before-colon", P + b"Content-Length : 3\r\n\r\nabc", (400,), True),
    Case("cl-over-limit", P + b"Content-Length: 99999999999\r\n\r\n", (413,), True),
    # -- Transfer-Encoding -------------------------------------------------------------------
    Case("te-chunked", te(b"chunked"), (200,), False, (b"POST /f 3",)),
    Case("te-case", te(b"ChUnKeD"), (200,), False, (b"POST /f 3",)),
    Case("te-ows", te(b"\tchunked  "), (200,), False, (b"POST /f 3",)),
    Case("te-trailing-tab", te(b"chunked\t"), (400,), True),  # llhttp refuses it: so do we
    Case("te-unknown", te(b"gzip", b"abc" + SMUGGLED), (400,), True),
    # llhttp itself refuses this only after on_headers_complete: the handler must not run.
    Case("te-unknown-not-dispatched", b"POST /noread HTTP/1.1\r\nHost: a\r\n"
         b"Transfer-Encoding: gzip\r\n\r\nabc", (400,), True),
    Case("te-identity", te(b"identity", b"abc"), (400,), True),
    Case("te-empty", te(b"", b"abc"), (400,), True),
    Case("te-not-final", te(b"chunked, gzip"), (400,), True),
    Case("te-coding-then-chunked", te(b"gzip, chunked"), (501,), True),
    Case("te-chunked-twice-list", te(b"chunked, chunked"), (400,), True),
    Case("te-duplicated", P + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
         + CHUNKS, (400,), True),
    Case("te-split-over-headers", P + b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"
         b"\r\n\r\n" + CHUNKS, (400,), True),
    Case("te-leading-comma", te(b", chunked"), (400,), True),
    Case("te-xchunked", te(b"xchunked", b"abc"), (400,), True),
    Case("te-chunked-suffix", te(b"chunkedx", b"abc"), (400,), True),
    Case("te-quoted", te(b'"chunked"', b"abc"), (400,), True),
    Case("te-obs-fold", P + b"Transfer-Encoding:\r\n chunked\r\n\r\n" + CHUNKS, (400,), True),
    Case("te-space-before-colon", P + b"Transfer-Encoding : chunked\r\n\r\n" + CHUNKS,
         (400,), True),
    Case("te-vtab", te(b"\x0bchunked"), (400,), True),
    Case("te-formfeed", te(b"chunked\x0c"), (400,), True),
    Case("te-nul", te(b"chunked\x00"), (400,), True),
    Case("te-bare-cr", te(b"chunked\rx"), (400,), True),
    Case("te-http10", b"POST /f HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKS,
         (400,), True),
    Case("te-underscore-name", P + b"Transfer_Encoding: chunked\r\n\r\n" + CHUNKS,
         (200, 400), True),
    # -- chunk sizes (RFC 9112 §7.1: chunk-size = 1*HEXDIG) ----------------------------------
    Case("chunk-upper-hex", chunked(b"A\r\n0123456789\r\n0\r\n\r\n"), (200,), False,
         (b"POST /f 10",)),
    Case("chunk-leading-zeros", chunked(b"0003\r\nabc\r\n0\r\n\r\n"), (200,), False),
    Case("chunk-body-is-a-request", chunked(b"%x\r\n" % len(SMUGGLED) + SMUGGLED
                                            + b"\r\n0\r\n\r\n"), (200,), False,
         (b"POST /f %d" % len(SMUGGLED),)),
    Case("chunk-hex-prefix", chunked(b"0x3\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-negative", chunked(b"-3\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-plus", chunked(b"+3\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-empty-size", chunked(b"\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-not-hex", chunked(b"g\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-overflow", chunked(b"1" + b"0" * 16 + b"\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-overflow-f", chunked(b"f" * 17 + b"\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-space-after-size", chunked(b"3 \r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-space-before-size", chunked(b" 3\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-size-bare-lf", chunked(b"3\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-size-bare-cr", chunked(b"3\rabc\r\n0\r\n\r\n"), (400,), True),
    Case("chunk-data-too-long", chunked(b"2\r\nabc\r\n0\r\n\r\n" + SMUGGLED), (400,), True),
    Case("chunk-data-bare-lf", chunked(b"3\r\nabc\n0\r\n\r\n"), (400,), True),
    Case("chunk-data-no-crlf", chunked(b"3\r\nabc0\r\n\r\n"), (400,), True),
    Case("chunk-last-bare-lf", chunked(b"3\r\nabc\r\n0\n\n"), (400,), True),
    Case("chunk-last-no-final-crlf", chunked(b"0\r\n") + SMUGGLED, (400,), True),
    # -- chunk extensions (RFC 9112 §7.1.1) and trailers (§7.1.2) -------------------------
    Case("ext-name", chunked(b"3;foo\r\nabc\r\n0\r\n\r\n"), (200,), False, (b"POST /f 3",)),
    Case("ext-name-value", chunked(b"3;foo=bar\r\nabc\r\n0;x=y\r\n\r\n"), (200,), False),
    Case("ext-quoted", chunked(b'3;foo="b;a\\"r"\r\nabc\r\n0\r\n\r\n'), (200,), False),
    Case("ext-many", chunked(b"3;a;b=c;d=e\r\nabc\r\n0\r\n\r\n"), (200,), False),
    Case("ext-bare-cr", chunked(b"3;a\rb\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("ext-bare-lf", chunked(b"3;a\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("ext-nul", chunked(b"3;a\x00\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("ext-no-name", chunked(b"3;\r\nabc\r\n0\r\n\r\n"), (400,), True),
    Case("ext-unterminated-quote", chunked(b'3;a="b\r\nabc\r\n0\r\n\r\n'), (400,), True),
    # An extension that never ends, sent in pieces: refused once over max_trailer (1 KiB).
    Case("ext-endless", [chunked(b"3;")] + [b"a" * 16384] * 64, (431,), True),
    Case("trailer", chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n"), (200,), False,
         (b"POST /f 3",)),
    Case("trailer-obs-fold", chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"), (400,), True),
    Case("trailer-bare-lf", chunked(b"3\r\nabc\r\n0\r\nX-T: 1\n\r\n"), (400,), True),
    Case("trailer-bad-name", chunked(b"3\r\nabc\r\n0\r\nX T: 1\r\n\r\n"), (400,), True),
    Case("trailer-too-long", chunked(b"3\r\nabc\r\n0\r\nX: " + b"a" * 2000 + b"\r\n\r\n"),
         (431,), True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_framing(hostile_server, case: Case) -> None:
    run_case(hostile_server.port, case)


def test_body_errors_are_answered_once_and_logged_without_traceback(hostile_server,
                                                                     caplog) -> None:
    """A malformed body under a handler that awaits it: one 400, one INFO line, no traceback.

    The handler gets the error as the exception it awaits after the 400 was sent; it used to
    be passed on to the app's error handler, which failed ("the response head was already
    sent") and logged a traceback per hostile request.
    """
    caplog.set_level(logging.INFO, logger="corkweb")
    for body in (b"0x3\r\nabc\r\n0\r\n\r\n", b"3\r\nabcX\r\n0\r\n\r\n"):
        run_case(hostile_server.port, Case("body-error", chunked(body), (400,), True))
    records = [r for r in caplog.records if r.name.startswith("corkweb")]
    assert [r.levelno for r in records] == [logging.INFO] * 2, records
    assert all(r.exc_info is None for r in records)
