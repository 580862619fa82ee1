"""Streaming a response body: ``res.write`` (chunked or close-delimited), ``res.try_end``
(known length, with backpressure) and ``res.on_writable``.

The streaming half of :class:`corkweb.response.Response`, kept apart as body reading is
(``corkweb/body.py``). The head still goes out once, on the first written byte, and every
piece goes through the connection's corker.

The states of a response, shared by both halves::

    PENDING --write/try_end--> STREAMING --end/try_end--> DONE
    PENDING ----------------end---------------------------> DONE
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .wire.writer import LAST_CHUNK, chunk

__all__ = ["StreamWriter", "PENDING", "STREAMING", "DONE"]

log = logging.getLogger("corkweb.error")

PENDING, STREAMING, DONE = 0, 1, 2

_CHUNKED = b"transfer-encoding: chunked\r\n"


class StreamWriter:
    """``write``/``try_end``/``on_writable`` for :class:`corkweb.response.Response`."""

    _length = -1
    _offset = 0
    _chunked = False

    if TYPE_CHECKING:  # provided by Response
        _conn: Any
        _req: Any
        _state: int
        _close: bool
        aborted: bool
        _on_writable: Callable[..., Any] | None
        _on_finish: list[Callable[..., Any]] | None

        def _encode(self, message: Any) -> tuple[bytes, bytes | None]: ...
        def _head(self, framing: bytes, default_ct: bytes | None) -> bytes: ...
        def _finished(self) -> None: ...

    def write(self, message: Any) -> StreamWriter:
        """Send part of the body now; the response stays open until ``end``.

        Without a known length the body is chunked (HTTP/1.1) or ends with the connection
        (HTTP/1.0).
        """
        if self._state == DONE:
            if self.aborted:
                return self
            raise RuntimeError("write() after the response was ended")
        body, ctype = self._encode(message)
        conn = self._conn
        if self._state == PENDING:
            self._start_stream(ctype, -1)
        if body and self._req.method != "HEAD":
            self._offset += len(body)
            conn.write(chunk(body) if self._chunked else body)
        return self

    def _start_stream(self, ctype: bytes | None, length: int) -> None:
        self._state = STREAMING
        self._length = length
        if length >= 0:
            framing = b"content-length: %d\r\n\r\n" % length
        elif self._req.version == "1.1":
            self._chunked = True
            framing = _CHUNKED + b"\r\n"
        else:
            self._close = True  # HTTP/1.0: the body ends when the connection does
            framing = b"\r\n"
        self._conn.write(self._head(framing, ctype))

    def _end_stream(self, body: bytes) -> None:
        conn = self._conn
        head_only = self._req.method == "HEAD"
        if self._chunked:
            conn.write(chunk(body) + LAST_CHUNK if not head_only else b"")
        elif body and not head_only:
            self._offset += len(body)
            conn.write(body)
        if self._length >= 0 and self._offset != self._length and not head_only:
            log.error("response body was %d bytes but %d were announced; closing the connection",
                      self._offset, self._length)
            self._close = True
        self._state = DONE
        conn.response_done(self)
        if self._on_finish is not None:
            self._finished()

    def try_end(self, message: Any, total_size: int,
                end_connection: bool = False) -> tuple[bool, bool]:
        """Send part of a body of known ``total_size``; returns ``(ok, done)``.

        ``ok`` is False while the client reads slower than we write (backpressure): stop and
        continue from ``on_writable``. ``done`` is True once ``total_size`` bytes were sent.
        """
        if self._state == DONE:
            return (not self.aborted and self._conn.writable, True)
        body, ctype = self._encode(message)
        if end_connection:
            self._close = True
        if self._state == PENDING:
            self._start_stream(ctype, total_size)
        elif self._length != total_size:
            raise ValueError("try_end() total_size changed during the response")
        if self._offset + len(body) > total_size:
            raise ValueError(f"try_end() would send more than total_size={total_size} bytes")
        conn = self._conn
        if self._req.method == "HEAD":
            self._offset = total_size
        elif body:
            self._offset += len(body)
            conn.write(body)
        done = self._offset == total_size
        if done:
            self._state = DONE
            conn.response_done(self)
            if self._on_finish is not None:
                self._finished()
        return (conn.writable, done)

    def get_write_offset(self) -> int:
        """Body bytes sent so far."""
        return self._offset

    def on_writable(self, handler: Callable[[Any, int], Any]) -> StreamWriter:
        """Call ``handler(res, offset)`` when the client has read what was buffered."""
        self._on_writable = handler
        return self

