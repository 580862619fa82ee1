"""Body intake: the request body as the connection parses it, held for whoever reads it.

The connection feeds chunks in as the parser produces them (:meth:`BodyIntake.feed`,
:meth:`~BodyIntake.feed_end`, :meth:`~BodyIntake.fail_body`); a reader takes them either as a
stream (:meth:`~BodyIntake.on_data`) or whole (:meth:`~BodyIntake.read_body`). A chunk that
arrives before anyone reads is kept, so awaiting something before ``get_data()`` never loses
body bytes (socketify's issue #207). ``100 Continue`` is sent the first time a reader asks.

The base of :class:`corkweb.server.exchange.Exchange`; kept apart because reading the body and
answering are two concepts that share only the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .exchange import ExchangeConnection

__all__ = ["BodyIntake"]


class BodyIntake:
    """The request body of one exchange, between the parser and its reader."""

    # Class-level defaults: a request without a body costs no assignment for these.
    _continue_sent = False
    _body: list[bytes] | None = None
    _waiters: list[asyncio.Future[Any]] | None = None
    _on_data: Callable[..., Any] | None = None
    _failure_watchers: list[Callable[[BaseException], Any]] | None = None
    #: Why the body cannot complete (client gone, malformed chunking, timeout), once known.
    body_error: BaseException | None = None

    if TYPE_CHECKING:  # set by Exchange.__init__
        _conn: ExchangeConnection
        #: True once the whole body arrived (at once for a request without a body).
        body_done: bool
        closing: bool

        def write_continue(self) -> Any: ...
        def has_responded(self) -> bool: ...

    # -- reading (handlers and batteries) -----------------------------------------------------

    def on_data(self, handler: Callable[[Any, bytes, bool], Any]) -> BodyIntake:
        """Stream the body: ``handler(res, chunk, is_end)`` per chunk, ``is_end`` on the last.

        Chunks that arrived before the handler was attached are delivered at once, so an
        ``await`` before ``on_data`` never loses body bytes.
        """
        if self._on_data is not None or self._waiters is not None:
            raise RuntimeError("the request body is already being read")
        self._on_data = handler
        if not self.body_done:
            # As get_data: a client that sent the whole body without waiting needs no 100
            # (RFC 9110 §10.1.1), and the hostile battery reads one as an extra answer.
            self.write_continue()
        pending, self._body = self._body, None
        if pending:
            for piece in pending:
                handler(self, piece, False)
        if self.body_done:
            handler(self, b"", True)
            self._on_data = None  # nothing more will come: see feed_end
        elif self.body_error is not None:
            raise self.body_error
        return self

    def read_body(self) -> asyncio.Future[bytes]:
        """Await the whole body as ``bytes`` (``res.get_data()`` wraps it for handlers:
        ``corkweb/body.py``)."""
        if self._on_data is not None:
            raise RuntimeError("the request body is being streamed through on_data")
        fut: asyncio.Future[bytes] = self._conn.loop.create_future()
        if self.body_error is not None:
            fut.set_exception(self.body_error)
        elif self.body_done:
            fut.set_result(self._joined_body())
        else:
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(fut)
            self.write_continue()
        return fut

    def on_body_failed(self, callback: Callable[[BaseException], Any]) -> BodyIntake:
        """Call ``callback(exc)`` if the body cannot complete (a streaming reader such as
        the multipart one learns this way that no more chunks will come)."""
        if self._failure_watchers is None:
            self._failure_watchers = [callback]
        else:
            self._failure_watchers.append(callback)
        return self

    @property
    def reading_body(self) -> bool:
        """Whether a reader waits for the body (``read_body`` or ``on_data``)."""
        return self._waiters is not None or self._on_data is not None

    def _joined_body(self) -> bytes:
        body = self._body
        if body is None:
            return b""
        if len(body) != 1:
            self._body = body = [b"".join(body)]
        return body[0]

    # -- feeding (the connection) -------------------------------------------------------------

    def wants_body(self) -> bool:
        """Whether body chunks still matter: the answer is not complete, or someone reads."""
        return not self.has_responded() or self.reading_body

    def feed(self, piece: bytes) -> None:
        """A body chunk from the parser: to the ``on_data`` handler, or kept for a reader."""
        handler = self._on_data
        if handler is not None:
            handler(self, piece, False)
        elif self._body is None:
            self._body = [piece]
        else:
            self._body.append(piece)

    def feed_end(self) -> None:
        """The body is complete: tell the ``on_data`` handler and wake ``get_data`` readers."""
        self.body_done = True
        handler = self._on_data
        if handler is not None:
            # The last call: let go of the reader (often an object holding this exchange, a
            # cycle that would wait for a garbage collection).
            self._on_data = None
            handler(self, b"", True)
        self._failure_watchers = None  # the body can no longer fail
        waiters, self._waiters = self._waiters, None
        if waiters:
            body = self._joined_body()
            for fut in waiters:
                if not fut.done():
                    fut.set_result(body)

    def fail_body(self, exc: BaseException) -> bool:
        """The body cannot complete; returns True if a reader was told (it will answer)."""
        self.body_error = exc
        self.closing = True
        self._on_data = None  # no chunk will come any more (see feed_end)
        told = False
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_exception(exc)
                told = True
        watchers, self._failure_watchers = self._failure_watchers, None
        for watcher in watchers or ():
            watcher(exc)
            told = True
        return told
