"""One HTTP exchange: the answer to one request, from its status line to its last body byte.

:class:`Exchange` is what the connection (``server/http.py``) and the batteries talk to, through
public members only; :class:`corkweb.response.Response` puts socketify's conveniences on top
(cookies, ``send``, ``render``, ``redirect``, typed body readers). It holds:

* its **phase**, a :class:`Phase` that moves only along :data:`MOVES` (an illegal move raises
  :class:`IllegalTransition`)::

      PENDING --write/try_end--> STREAMING --end/try_end--> DONE
      PENDING ---------------------end--------------------> DONE
      PENDING / STREAMING / DONE ---client goes away------> ABORTED (writes are dropped)

  (DONE -> ABORTED: the answer left, but a handler still runs when the client goes; its late
  calls are then ignored instead of raising);
* the **head**: a status and a :class:`Headers` collection, which may be set in any order and
  is serialised once, with the first body byte or the end (DESIGN.md §1 rule 6);
* the **body framing**: ``content-length`` for a whole body, chunked or close-delimited for a
  stream, nothing for 1xx/204/304 (RFC 9110 §6.4.1), no body bytes for HEAD;
* the **body intake** (:class:`~corkweb.server.intake.BodyIntake`) and the **abort**.

It reaches its connection only through :class:`ExchangeConnection`, the list of what it needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from ..errors import ClientDisconnected, IllegalTransition
from ..wire.headers import Headers
from ..wire.limits import Limits
from ..wire.writer import CONTINUE, LAST_CHUNK, LENGTH_LINES, chunk, length_line, status_line
from .exchange_state import (
    ABORTED,
    CAN_MOVE,
    DONE,
    JSON_LINE,
    MOVES,
    PENDING,
    STATUS_200,
    STREAMING,
    TEXT_LINE,
    ExchangeBase,
    Phase,
)

__all__ = ["Exchange", "ExchangeConnection", "ExchangeOptions", "Headers", "IllegalTransition",
           "MOVES", "Phase", "TypedBody", "PENDING", "STREAMING", "DONE", "ABORTED"]

log = logging.getLogger("corkweb.error")


_CLOSE = b"connection: close\r\n"
_KEEP_ALIVE = b"connection: keep-alive\r\n"
_CHUNKED = b"transfer-encoding: chunked\r\n\r\n"
_LENGTHS = len(LENGTH_LINES)


class ExchangeOptions:
    """The settings an exchange reads, app-wide (the app hands in a richer subclass:
    ``corkweb.response.ResponseOptions``)."""

    __slots__ = ("json_dumps", "json_loads", "debug", "proxies")

    def __init__(self, json_dumps: Callable[[Any], bytes] | None = None,
                 json_loads: Callable[[bytes], Any] | None = None, debug: bool = False) -> None:
        import orjson

        self.json_dumps = json_dumps or orjson.dumps
        self.json_loads = json_loads or orjson.loads
        self.debug = debug
        #: Whose forwarding headers to believe (``corkweb.proxy.TrustedProxies``), if any.
        self.proxies: Any = None


class _Date(Protocol):
    date: bytes
    limits: Limits


class ExchangeConnection(Protocol):
    """What an exchange needs from its connection (``server/http.py`` provides it)."""

    loop: asyncio.AbstractEventLoop
    #: The asyncio transport (for its extra info: addresses, TLS).
    transport: Any
    #: The app-wide options object (``corkweb.response.ResponseOptions``): opaque here but
    #: for ``json_dumps``.
    options: Any
    #: The server's shared state: the current ``date:`` line and the limits.
    state: _Date
    #: Set by a graceful shutdown: the response in flight closes the connection.
    draining: bool

    @property
    def writable(self) -> bool: ...
    def write(self, data: bytes) -> None: ...
    def cork(self) -> Any: ...
    def uncork(self, prev: Any) -> None: ...
    def response_done(self, res: Any) -> None:
        """The exchange's last byte is queued. ``end`` leaves this call to the connection
        while the exchange's ``defer_done`` is set (the connection set it)."""
    def call_user(self, fn: Callable[..., Any], *args: Any) -> Any: ...
    def handler_finished(self, res: Any, exc: BaseException | None) -> None: ...
    def upgrade_accepted(self, res: Any) -> None: ...
    def run_async(self, coro: Any, res: Any) -> asyncio.Task[Any]: ...
    def abort_transport(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def buffered_amount(self) -> int: ...
    def remote_address(self) -> str | None: ...
    def queued_mark(self) -> int: ...
    def take_back(self, mark: int, first: bytes) -> bool: ...
    async def sendfile(self, fd: int, offset: int, count: int) -> None: ...


from .intake import BodyIntake  # noqa: E402  (intake's type hints name ExchangeConnection)
from .speedups import SPEEDUPS  # noqa: E402

_E = TypeVar("_E", bound="Exchange")


class TypedBody:
    """Body bytes with the ``content-type`` line to send when the handler set none
    (``res.end(TypedBody(html.encode(), HTML_TYPE))``)."""

    __slots__ = ("data", "content_type")

    def __init__(self, data: bytes, content_type: bytes) -> None:
        self.data = data
        self.content_type = content_type


class Exchange(ExchangeBase, BodyIntake):
    """The answer to one request, bound to its connection."""

    # PERF: no __slots__. Most fields are used only by streaming, body reading, hooks or error
    # paths; as class attributes they cost nothing until set, and __init__ sets only what
    # every response needs (0.3 µs per request less than setting all of them).
    _body_filter: Callable[[Any, bytes, bytes | None], bytes] | None = None
    _on_aborted: Callable[..., Any] | None = None
    _length = -1
    _offset = 0
    _chunked = False
    #: The handler's task while an async handler runs (a strong reference: asyncio keeps
    #: only weak ones).
    task: asyncio.Task[Any] | None = None
    #: What ``upgrade`` accepted (the connection switches protocol when this is set).
    upgrade_info: Any = None
    #: Set while the app's error handler answers this exchange (it is not asked twice).
    erroring = False
    #: The middleware that stopped its chain without answering (named in the 500 error).
    stopped_by: str | None = None
    #: ``writable_handler(res, offset)``: called when the client has read what was buffered.
    writable_handler: Callable[[Any, int], Any] | None = None
    _head_at: tuple[int, bytes] = (-1, b"")  # the streamed head's place in the cork buffer

    def __repr__(self) -> str:
        req = self.request
        return (f"<{type(self).__name__} {self._code} {self.phase.name.lower()} "
                f"for {req.method} {req.url}>")

    # -- phase --------------------------------------------------------------------------------

    def move(self, to: Phase) -> None:
        """Go to phase ``to``; raises :class:`IllegalTransition` if :data:`MOVES` forbids it."""
        if not CAN_MOVE[self.phase][to]:
            raise IllegalTransition(f"{self!r}: cannot move from {self.phase.name} to {to.name}")
        self.phase = to

    @property
    def aborted(self) -> bool:
        """True once the client went away before the response was complete."""
        return self.phase is ABORTED

    def has_responded(self) -> bool:
        """True once the response was ended (or the client went away)."""
        return self.phase >= DONE

    def has_continuation(self) -> bool:
        """Whether something registered will finish this exchange later."""
        return (
            self.phase is STREAMING or self.task is not None or self._waiters is not None
            or self._on_data is not None or self._on_aborted is not None
            or self.writable_handler is not None or self.upgrade_info is not None
        )

    # -- the head -----------------------------------------------------------------------------

    @property
    def status(self) -> int:
        """The status code set so far (200 unless changed)."""
        return self._code

    @property
    def headers(self) -> Headers:
        """The response head's header collection (created on first use)."""
        if self._headers is None:
            self._headers = Headers()
        return self._headers

    def _check_head_open(self, what: str) -> bool:
        """False (do nothing) after an abort; raises once the head is out."""
        if self.phase is ABORTED:
            return False
        raise RuntimeError(f"{what} after the response head was sent")

    def write_status(self: _E, status: int | str | bytes) -> _E:
        """Set the status: ``404``, ``"404 Not Found"`` or ``"299 Custom Reason"``."""
        if self.phase is not PENDING and not self._check_head_open("write_status()"):
            return self
        line = status_line(status)
        self._status = line
        self._code = int(line[9:12])
        return self

    def write_header(self: _E, name: str, value: str | bytes | int) -> _E:
        """Add a header line (repeat the call for repeated fields such as ``link``).

        ``content-type`` replaces the default one. ``content-length``, ``transfer-encoding``
        and ``connection`` are corkweb's to write (a wrong one would desync the connection):
        they are refused with ``ValueError``.
        """
        if self.phase is not PENDING and not self._check_head_open("write_header()"):
            return self
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers()
        headers.add(name, value)
        return self

    def add_header_lines(self: _E, lines: Iterable[bytes]) -> _E:
        """Append header lines serialised beforehand (``Headers.add_lines``)."""
        if self.phase is not PENDING and not self._check_head_open("add_header_lines()"):
            return self
        self.headers.add_lines(lines)
        return self

    #: The same under the name the middleware batteries use.
    write_header_lines = add_header_lines

    def clear_head(self) -> None:
        """Forget status, headers and cookies set so far (an error answer replaces them)."""
        if self.phase is not PENDING:
            raise RuntimeError("the response head was already sent")
        self._status = STATUS_200
        self._code = 200
        self._headers = None

    def before_head(self: _E, callback: Callable[[Any], Any]) -> _E:
        """Call ``callback(res)`` just before the head is serialised (it may still add
        headers or change the status): for middleware that decorates every response."""
        if self.phase is not PENDING:
            raise RuntimeError("before_head() after the response head was sent")
        if self._before_head is None:
            self._before_head = [callback]
        else:
            self._before_head.append(callback)
        return self

    def on_finish(self: _E, callback: Callable[[Any], Any]) -> _E:
        """Call ``callback(res)`` once the response is complete (all of it is queued for the
        client): for logging and timing. Not called for an aborted response."""
        if self._on_finish is None:
            self._on_finish = [callback]
        else:
            self._on_finish.append(callback)
        return self

    _on_abort_hooks: list[Callable[[Any], Any]] | None = None

    def on_complete(self: _E, callback: Callable[[Any], Any]) -> _E:
        """Call ``callback(res)`` exactly once: when the response is complete (as
        ``on_finish``; a WebSocket's ``101`` completes it too) or when the client went away
        before (``res.aborted`` is then true). For counters and spans that must be closed."""
        self.on_finish(callback)
        if self._on_abort_hooks is None:
            self._on_abort_hooks = [callback]
        else:
            self._on_abort_hooks.append(callback)
        return self

    def filter_body(self: _E, fn: Callable[[Any, bytes, bytes | None], bytes]) -> _E:
        """``fn(res, body, default_ctype) -> body`` transforms the body given to ``end`` just
        before the head is built (compression); streamed bodies are not filtered."""
        if self.phase is not PENDING:
            raise RuntimeError("filter_body() after the response head was sent")
        self._body_filter = fn
        if self._before_head is None:
            self._before_head = []  # end() looks for a filter only when hooks exist
        return self

    def _run_before_head(self) -> None:
        hooks, self._before_head = self._before_head, None
        for hook in hooks or ():
            hook(self)

    def _finished(self) -> None:
        hooks, self._on_finish = self._on_finish, None
        self._on_abort_hooks = None  # complete: they can never run (and may hold this object)
        for hook in hooks or ():
            self._conn.call_user(hook, self)

    def _head(self, framing: bytes, default_ct: bytes | None) -> bytes:
        """Serialise the head once; ``framing`` is the content-length or chunked line."""
        if self._before_head is not None:
            self._run_before_head()
        req = self.request
        conn = self._conn
        parts = [self._status, conn.state.date]
        headers = self._headers
        if headers is not None:
            parts += headers.lines
            if headers.has_content_type:
                default_ct = None
        if default_ct is not None:
            parts.append(default_ct)
        if self.closing or not req.keep_alive or conn.draining:
            self.closing = True
            parts.append(_CLOSE)
        elif req.version == "1.0":
            parts.append(_KEEP_ALIVE)
        parts.append(framing)
        return b"".join(parts)

    # -- the body: whole ------------------------------------------------------------------------

    def _encode(self, message: Any) -> tuple[bytes, bytes | None]:
        cls = message.__class__
        if cls is TypedBody:
            return message.data, message.content_type
        if cls is str:
            return message.encode(), TEXT_LINE
        if cls is bytes:
            return message, None
        if message is None:
            return b"", None
        if isinstance(message, (bytes, bytearray, memoryview)):
            return bytes(message), None
        if isinstance(message, str):
            return message.encode(), TEXT_LINE
        return self._conn.options.json_dumps(message), JSON_LINE

    def _end_general(self: _E, message: Any = b"", end_connection: bool = False) -> _E:
        """Send ``message`` as the whole body (or the last part after ``write``) and finish.

        ``str`` is sent as UTF-8 ``text/plain``; ``bytes`` as is; ``None`` as an empty body;
        a :class:`TypedBody` with its own default type (``render`` sends HTML this way);
        anything else (dict, list, dataclass, …) as JSON through orjson. A ``content-type``
        header written before wins over these defaults. Ending an aborted response does
        nothing; ending a response twice raises ``RuntimeError``.
        """
        if self.phase is not PENDING:
            return self._end_late(message, end_connection)
        conn = self._conn
        cls = message.__class__
        if cls is str:
            body, ctype = message.encode(), TEXT_LINE
        elif cls is bytes:
            body, ctype = message, None
        elif cls is dict:  # PERF: _encode's JSON case without its call: JSON 32.5k -> 29.8k
            body, ctype = conn.options.json_dumps(message), JSON_LINE  # instructions a request
        else:
            body, ctype = self._encode(message)
        if end_connection:
            self.closing = True
        if self._before_head is not None:
            self._run_before_head()
            if self._body_filter is not None:  # compression; set only with a hook (no cost)
                body = self._body_filter(self, body, ctype)
        code, req = self._code, self.request
        if code != 200 and (code < 200 or code == 204 or code == 304):  # PERF: 200 first
            # No body and no Content-Length for these (RFC 9110 §6.4.1, §8.6).
            data = self._head(b"\r\n", None)
        elif (self._headers is None and not self.closing and req.keep_alive
              and req.version == "1.1" and not conn.draining):
            # PERF: the common response (no extra headers, keep-alive) joined, its length line
            # from a table: half the time of the %-format it replaces (106 vs 222 ns, timeit).
            size = len(body)
            data = b"".join((self._status, conn.state.date, ctype or b"", LENGTH_LINES[size]
                             if size < _LENGTHS else length_line(size),
                             body if req.method != "HEAD" else b""))
        else:
            data = self._head(length_line(len(body)), ctype)
            if body and req.method != "HEAD":
                data += body
        self.phase = DONE  # PERF: not through move(): the test above is MOVES' check for it
        conn.write(data)
        if not self.defer_done:
            conn.response_done(self)
        if self._on_finish is not None:
            self._finished()
        return self

    if not SPEEDUPS:
        end = _end_general  # the C base's end() takes the common case, and this the rest

    def _end_late(self: _E, message: Any, end_connection: bool) -> _E:
        if self.phase is ABORTED:
            return self  # the client is gone
        if self.phase is DONE:
            raise RuntimeError("the response was already ended")
        body, _ = self._encode(message)
        if end_connection:
            self.closing = True
        self._end_stream(body)
        return self

    # -- the body: streamed ---------------------------------------------------------------------

    def write(self: _E, message: Any) -> _E:
        """Send part of the body now; the response stays open until ``end``.

        Without a known length the body is chunked (HTTP/1.1) or ends with the connection
        (HTTP/1.0).
        """
        if self.phase >= DONE:
            if self.phase is ABORTED:
                return self
            raise RuntimeError("write() after the response was ended")
        body, ctype = self._encode(message)
        if self.phase is PENDING:
            self._start_stream(ctype, -1)
        if body and self.request.method != "HEAD":
            self._offset += len(body)
            self._conn.write(chunk(body) if self._chunked else body)
        return self

    def _start_stream(self, ctype: bytes | None, length: int) -> None:
        # PERF: only called in PENDING (write/try_end test it first), so the move is legal
        # without move()'s check (~800 instructions per checked move, callgrind).
        self.phase = STREAMING
        self._length = length
        if length >= 0:
            framing = length_line(length)
        elif self.request.version == "1.1":
            self._chunked = True
            framing = _CHUNKED
        else:
            self.closing = True  # HTTP/1.0: the body ends when the connection does
            framing = b"\r\n"
        head = self._head(framing, ctype)
        self._head_at = (self._conn.queued_mark(), head)
        self._conn.write(head)

    def retract_head(self) -> bool:
        """Take back a streamed answer whose head is still in the cork buffer (an error can
        still be answered with a status); False once any of it was sent."""
        if self.phase is not STREAMING or not self._conn.take_back(*self._head_at):
            return False
        self.move(PENDING)
        self._length, self._offset, self._chunked = -1, 0, False
        return True

    def _end_stream(self, body: bytes) -> None:
        conn = self._conn
        head_only = self.request.method == "HEAD"
        if self._chunked:
            conn.write(chunk(body) + LAST_CHUNK if not head_only else b"")
        elif body and not head_only:
            self._offset += len(body)
            conn.write(body)
        if self._length >= 0 and self._offset != self._length and not head_only:
            log.error("response body was %d bytes but %d were announced; closing the connection",
                      self._offset, self._length)
            self.closing = True
        self._complete()

    def _complete(self) -> None:
        self.phase = DONE  # PERF: from STREAMING only (end/try_end test it), as in _start_stream
        self._conn.response_done(self)
        if self._on_finish is not None:
            self._finished()

    def let_go_when_done(self) -> None:
        """Drop ``on_aborted`` and ``on_writable`` once the exchange completes or aborts.

        They are often closures over this exchange (``res.on_aborted(lambda r: ...)``, an
        event stream's writer): each is a reference cycle that would keep the exchange, its
        request and its body alive until a garbage collection instead of freeing them when
        the connection lets go. Registering them calls this.
        """
        # PERF: as an on_finish hook, which end() checks anyway: a response that registers
        # no callback pays nothing for this.
        hooks = self._on_finish
        if hooks is None:
            self._on_finish = [_let_go]
        elif _let_go not in hooks:
            hooks.append(_let_go)

    def try_end(self, message: Any, total_size: int,
                end_connection: bool = False) -> tuple[bool, bool]:
        """Send part of a body of known ``total_size``; returns ``(ok, done)``.

        ``ok`` is False while the client reads slower than we write (backpressure): stop and
        continue from ``on_writable``. ``done`` is True once ``total_size`` bytes were sent.
        """
        if self.phase >= DONE:
            return (self.phase is DONE and self._conn.writable, True)
        body, ctype = self._encode(message)
        if end_connection:
            self.closing = True
        if self.phase is PENDING:
            self._start_stream(ctype, total_size)
        elif self._length != total_size:
            raise ValueError("try_end() total_size changed during the response")
        if self._offset + len(body) > total_size:
            raise ValueError(f"try_end() would send more than total_size={total_size} bytes")
        conn = self._conn
        if self.request.method == "HEAD":
            self._offset = total_size
        elif body:
            self._offset += len(body)
            conn.write(body)
        done = self._offset == total_size
        if done:
            self._complete()
        return (conn.writable, done)

    async def sendfile_body(self, fd: int, offset: int, count: int) -> None:
        """After ``try_end(b"", total)`` sent the head: send ``count`` bytes of the open file
        ``fd`` from ``offset`` (zero-copy where the transport allows) as the next body bytes;
        the exchange completes once ``total`` bytes were sent. Returns quietly if the client
        goes away (the connection is closed and the exchange aborted)."""
        try:
            await self._conn.sendfile(fd, offset, count)
        except ConnectionResetError:
            return
        # The corker sent the bytes itself; count them so that the exchange completes.
        self._offset += count
        self.try_end(b"", self._length)

    def get_write_offset(self) -> int:
        """Body bytes sent so far."""
        return self._offset

    def write_continue(self: _E) -> _E:
        """Send ``100 Continue`` to a client that asked for it (sent automatically on read)."""
        if self.request.expect_continue and not self._continue_sent and self.phase is PENDING:
            self._continue_sent = True
            self._conn.write(CONTINUE)
        return self

    # -- upgrade --------------------------------------------------------------------------------

    def accept_upgrade(self, head: bytes, info: Any) -> None:
        """Send ``head`` (a ``101``) and switch the connection to the protocol ``info`` names
        once the handler returns (at once for an async handler that decided late)."""
        self.closing = False  # the connection stays open, as another protocol
        self._conn.write(head)
        self.move(DONE)
        self._code = 101
        self.upgrade_info = info
        if self._on_finish is not None:  # the 101 is the whole answer
            self._finished()
        self._conn.upgrade_accepted(self)

    # -- the connection, as the exchange's users need it ------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop serving this exchange."""
        return self._conn.loop

    @property
    def options(self) -> Any:
        """The app-wide options (``corkweb.response.ResponseOptions``)."""
        return self._conn.options

    @property
    def limits(self) -> Limits:
        """The server's limits (``corkweb.Limits``)."""
        return self._conn.state.limits

    @property
    def date_line(self) -> bytes:
        """The current ``date:`` header line (refreshed each second)."""
        return self._conn.state.date

    @property
    def draining(self) -> bool:
        """True once a graceful shutdown began: finish up, the connection will close."""
        return self._conn.draining

    @property
    def writable(self) -> bool:
        """False while more than the high-water mark waits to be sent (backpressure)."""
        return self._conn.writable

    # -- abort ----------------------------------------------------------------------------------

    def on_aborted(self: _E, handler: Callable[[Any], Any]) -> _E:
        """Call ``handler(res)`` if the client goes away before the response is complete."""
        self._on_aborted = handler
        self.let_go_when_done()
        return self

    def abort(self) -> None:
        """The connection is gone (or cut) before this exchange finished: later writes are
        dropped, a body reader gets ClientDisconnected, ``on_aborted`` runs if unanswered."""
        if self.phase is ABORTED:
            return
        was_done = self.phase is DONE
        self.move(ABORTED)
        self.fail_body(ClientDisconnected("the client closed the connection"))
        if not was_done and self._on_aborted is not None:
            self._conn.call_user(self._on_aborted, self)
        if not was_done and self._on_abort_hooks is not None:
            hooks, self._on_abort_hooks = self._on_abort_hooks, None
            for hook in hooks:
                self._conn.call_user(hook, self)
        _let_go(self)

    def step_done(self, exc: BaseException | None) -> None:
        """The handler's coroutine ended (``exc`` if it failed): its driver reports here."""
        self._conn.handler_finished(self, exc)


def _let_go(exchange: Exchange) -> None:
    """No one will call these any more: see :meth:`Exchange.let_go_when_done`."""
    exchange._on_aborted = None
    exchange._on_abort_hooks = None
    exchange.writable_handler = None
