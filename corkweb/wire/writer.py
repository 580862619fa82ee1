"""Response serialisation: status lines, header lines, chunk framing, the Date header.

Everything returns bytes ready to be handed to the corker. The head of a response is built
once, when its first body byte (or its end) is written, so status, headers and cookies may be
set in any order before that (DESIGN.md §1 rule 6).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus

from ..errors import reason_phrase

__all__ = [
    "status_line",
    "header_line",
    "header_lines",
    "date_line",
    "chunk",
    "LAST_CHUNK",
    "CONTINUE",
    "error_response",
    "length_line",
    "LENGTH_LINES",
    "LENGTH_LINES_MAX",
    "STATUS_LINES",
]

# PERF: precomputed "HTTP/1.1 200 OK\r\n" for every registered status; building the line per
# response costs a format call and an encode.
_STATUS_LINES: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("ascii")) for s in HTTPStatus
}
#: The same, for callers that look a registered status up without a call (read only).
STATUS_LINES = _STATUS_LINES

LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

#: ``LENGTH_LINES[n]`` is ``length_line(n)`` for the body sizes most responses have.
LENGTH_LINES_MAX = 2048
LENGTH_LINES = tuple(b"content-length: %d\r\n\r\n" % n for n in range(LENGTH_LINES_MAX))


def length_line(size: int) -> bytes:
    """The ``content-length`` line that ends a head, blank line included."""
    if size < LENGTH_LINES_MAX:
        return LENGTH_LINES[size]
    return b"content-length: %d\r\n\r\n" % size


# Bytes that may not appear in a header field value we emit (RFC 9110 §5.5): CR, LF, NUL.
_FORBIDDEN_VALUE = ("\r", "\n", "\x00")


def status_line(status: int | str | bytes) -> bytes:
    """The status line for ``200``, ``"404 Not Found"`` or ``b"418 I'm a teapot"``."""
    if isinstance(status, int):
        line = _STATUS_LINES.get(status)
        if line is not None:
            return line
        if not 100 <= status <= 999:
            raise ValueError(f"HTTP status must be from 100 to 999, got {status}")
        return b"HTTP/1.1 %d Unknown\r\n" % status
    raw = status.encode("latin-1") if isinstance(status, str) else bytes(status)
    code, _, reason = raw.strip().partition(b" ")
    if not (len(code) == 3 and code.isdigit()) or b"\r" in reason or b"\n" in reason:
        raise ValueError(f"invalid HTTP status {status!r}")
    if not reason:
        return status_line(int(code))
    return b"HTTP/1.1 " + code + b" " + reason + b"\r\n"


def token_ok(name: str) -> bool:
    # RFC 9110 §5.1 field-name = token; checked on the rare path only (names users pass).
    return (bool(name) and name.isascii()
            and all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name))


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\r\n\x00]")


def header_lines(pairs: Iterable[tuple[bytes, bytes]],
                 refused: frozenset[bytes] = frozenset()) -> list[bytes]:
    """``b"name: value\\r\\n"`` for every pair, checked as :func:`header_line` checks one
    (a token name; no CR, LF or NUL in the value) but for pairs that arrive as bytes, as
    ASGI headers do. A name in ``refused`` (lower-case) raises ``ValueError``, as any bad
    pair does, before anything is returned."""
    out = []
    for name, value in pairs:
        if name.__class__ is not bytes or value.__class__ is not bytes:
            name, value = _as_bytes(name), _as_bytes(value)
        if _TOKEN.fullmatch(name) is None:
            raise ValueError(f"invalid header name {name!r}")
        if _BAD_VALUE.search(value) is not None:
            raise ValueError(f"header {name!r} value contains CR, LF or NUL: {value!r}")
        if refused and name.lower() in refused:
            raise ValueError(f"{name!r} is set by corkweb from the body and cannot be written")
        out.append(b"%s: %s\r\n" % (name, value))
    return out


def _as_bytes(text: str | bytes | bytearray) -> bytes:
    return text.encode("latin-1") if isinstance(text, str) else bytes(text)


def header_line(name: str | bytes, value: str | bytes | int) -> bytes:
    """``b"name: value\\r\\n"``; refuses names and values that would inject a header."""
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    if not token_ok(name):
        raise ValueError(f"invalid header name {name!r}")
    if isinstance(value, int):
        return b"%s: %d\r\n" % (name.encode("ascii"), value)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif not isinstance(value, str):
        value = str(value)
    for bad in _FORBIDDEN_VALUE:
        if bad in value:
            raise ValueError(f"header {name!r} value contains CR, LF or NUL: {value!r}")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raw = value.encode("utf-8")
    return name.encode("ascii") + b": " + raw + b"\r\n"


_date_second = -1
_date_line = b""


def date_line(now: float | None = None) -> bytes:
    """``b"date: <IMF-fixdate>\r\n"`` (RFC 9110 §6.6.1) for ``now`` (default: the time)."""
    global _date_second, _date_line
    second = int(time.time() if now is None else now)
    if second != _date_second:
        _date_second = second
        _date_line = b"date: " + formatdate(second, usegmt=True).encode("ascii") + b"\r\n"
    return _date_line


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1); an empty ``data`` gives nothing."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


def error_response(status: int, message: str, close: bool = True) -> bytes:
    """A small plain-text error response with its own framing."""
    body = f"{status} {reason_phrase(status)}: {message}\n".encode()
    return b"".join((
        status_line(status), date_line(),
        b"content-type: text/plain; charset=utf-8\r\n",
        b"connection: close\r\n" if close else b"",
        b"content-length: %d\r\n\r\n" % len(body), body,
    ))
