"""The HTTP/1.1 connection: parser in, handler calls, responses out through the corker.

One ``HTTPConnection`` per TCP connection. Reading side and answering side are decoupled so that
pipelining keeps order (DESIGN.md §1 rule 4): the request being answered is ``_current``;
requests parsed after it wait in ``_queue`` (their bodies are buffered on their own responses)
and are dispatched one by one as responses end. Everything the handlers of one read write —
several pipelined responses included — leaves in one ``transport.write``, because
``data_received`` is itself a cork scope.

Its timeouts are :class:`~corkweb.server.deadlines.ReadDeadlines`' (they cost nothing per
request).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from types import CoroutineType
from typing import Any

from ..errors import (
    ClientDisconnected,
    HTTPError,
    IllegalTransition,
    ProtocolError,
    reason_phrase,
)
from ..wire.parser import ParserSink, RequestParser
from ..wire.writer import error_response
from . import hangup
from .corker import NOTHING_QUEUED, CorkedProtocol, CorkedStep
from .deadlines import ReadDeadlines
from .exchange import DONE, PENDING, Exchange
from .reading import BODY, BUSY, CAN_MOVE, HEAD, IDLE, ReadPhase
from .state import EAGER_TASKS, ServerState

__all__ = ["HTTPConnection"]

log = logging.getLogger("corkweb.error")


class HTTPConnection(ReadDeadlines, CorkedProtocol):
    """asyncio protocol for one HTTP/1.1 connection."""

    __slots__ = (
        "loop", "options", "_parser", "_current", "_reading", "_queue", "_phase",
        "_read_paused", "_final_error", "_close_after", "_dispatching",
        "_writable_check", "_activity", "_seen_phase", "_seen_activity", "_ticks",
        "_stalled", "draining", "_held_upgrade",
    )
    state: ServerState  # a slot of CorkedProtocol's
    # PERF: the handler, the response class and the write high-water mark are read from the
    # shared state (one attribute load more each per request, ~30 instructions in all)
    # rather than copied into three slots: 32 bytes less per connection (its object drops
    # from 288 to 256 bytes; python -m benchmarks --workloads conn-memory).

    def __init__(self, state: ServerState) -> None:
        super().__init__(state.corker)
        self.state = state
        #: Set by a graceful shutdown: the response in flight closes the connection.
        self.draining = False
        self.loop = state.loop
        self.options = state.options
        self._parser = RequestParser(self, state.limits, state.request_class)
        self._current: Exchange | None = None
        self._reading: Exchange | None = None
        self._queue: deque[Exchange] | None = None
        self._phase: ReadPhase = IDLE
        # Bumped by each request head and body chunk; the sweep compares it between ticks.
        # It wraps at 256, so CPython's small-int cache holds every value and an idle
        # connection carries no int or tuple object of its own for its timeouts (exactly 256
        # requests between two ticks look like none: a tick of extra age, at worst).
        self._activity = 0
        self._seen_phase: ReadPhase | None = None
        self._seen_activity = 0
        self._ticks = 0  # ticks spent in the same phase with no activity
        self._stalled = 0  # ticks spent with writing paused (the client reads nothing)
        self._read_paused = False
        self._final_error: ProtocolError | None = None
        self._close_after = False
        self._dispatching = False
        self._writable_check = False
        #: Bytes after an upgrade request, held while an async handler decides (WebSocket).
        self._held_upgrade: bytes | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=self.state.limits.write_high_water)
        state = self.state
        state.connections.add(self)
        if len(state.connections) > state.limits.max_connections:
            self.write(error_response(503, "server busy, try again"))
            self.close_transport()
            return
        state.watch(self)
        state.start_clock()
        if state.draining:
            # Accepted just before the listening socket closed: its client sends a request
            # it expects an answer to. Serve it like an idle keep-alive connection during the
            # drain (answered with connection: close; closed if it stays quiet).
            self.shutdown()

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        hangup.unwatch(self)  # its descriptor would keep the socket open
        self._parser.release()
        state = self.state
        state.connections.discard(self)
        if state.draining and state.on_empty is not None and not state.on_empty.done():
            state.on_empty.set_result(None)
        state.unwatch(self)
        pending = [self._current] if self._current is not None else []
        if self._queue:
            pending += self._queue
            self._queue.clear()
        self._current = self._reading = None
        for res in pending:
            if not res.has_responded() or res.task is not None:
                res.abort()

    def data_received(self, data: bytes) -> None:
        if self._final_error is not None or self._closed:
            return  # the stream is already refused; nothing after the error is trusted
        if self._phase is IDLE:
            self._phase = HEAD  # PERF: a move checked by its guard (READ_MOVES[IDLE] has HEAD)
        # PERF: CorkedProtocol.cork()/uncork() inlined: two calls less per read.
        corker = self._corker
        prev = corker.current
        if prev is not self:
            if prev is not None:
                prev.flush()
            corker.current = self
        try:
            offset = self._parser.feed(data)
            if offset is not None:
                self._after_upgrade(data, offset)
        except ProtocolError as exc:
            self._protocol_error(exc)
        finally:
            if prev is not self:
                corker.current = prev
                self.flush()

    def eof_received(self) -> bool | None:
        # The client closed its side. A client that still wants its answer keeps its side
        # open, so treat this as leaving: the transport closes, connection_lost aborts what is
        # in flight and on_aborted handlers run (socketify's "client went away" signal).
        return None

    def pause_writing(self) -> None:
        super().pause_writing()
        self.pause_reading()  # a client that does not read stops being read (bounded memory)
        hangup.watch(self)  # ...but its end-of-stream must not wait unread (hangup.py)

    def resume_writing(self) -> None:
        super().resume_writing()
        hangup.unwatch(self)
        # The client read: the send timeout counts from now, even if the next tick finds
        # writing paused again (a slow but steady reader is paused at most ticks).
        self._stalled = 0
        if self._queue and self._current is None:
            self._advance_corked()  # requests held back while the client was not reading
            if self._write_paused:
                return
        self.resume_reading()
        self._notify_writable()

    def _advance_corked(self) -> None:
        prev = self.cork()
        try:
            self._advance()
        finally:
            self.uncork(prev)

    def _notify_writable(self) -> None:
        self._writable_check = False
        res = self._current
        if res is not None and res.writable_handler is not None and not self._write_paused:
            prev = self.cork()
            try:
                self.call_user(res.writable_handler, res, res.get_write_offset())
            finally:
                self.uncork(prev)

    @property
    def writable(self) -> bool:
        """False while more than the high-water mark waits to be sent (backpressure)."""
        if self._write_paused or self._out_size < self.state.limits.write_high_water:
            return not self._write_paused
        # Over the mark inside a cork scope: the transport has not seen the bytes yet, so it
        # will not necessarily pause; look again once this scope has flushed.
        if not self._writable_check:
            self._writable_check = True
            self.loop.call_soon(self._notify_writable)
        return False

    # -- parser sink ------------------------------------------------------------------------

    def on_request(self, req: Any) -> None:
        if self._closed:
            # An answer said "connection: close" (or the connection was cut) while later
            # requests were read with it: they are not processed (RFC 9112 §9.6), since the
            # client, told they go unanswered, may well send them again elsewhere.
            return
        state = self.state
        res = state.new_response(self, req)
        self._reading = res
        self._activity = (self._activity + 1) & 255
        # PERF: the moves of every request (IDLE -> HEAD in data_received, here, and to BUSY
        # and IDLE in on_request_end) skip _enter's check: the parser's order makes them legal
        # (a head never comes inside a body), and checking the four cost 3.2k instructions per
        # request (plaintext 41,619 against 38,405, python -m benchmarks.instructions).
        self._phase = BODY if not res.body_done else BUSY
        # PERF: the _out_size test costs ~230 instructions per request; without it, one read
        # of pipelined requests for large answers is answered at once, whatever the client
        # reads (200 x "GET /1MiB" in one 6 KiB packet held 400 MiB). Over the mark, requests
        # wait in the queue until the client has read (resume_writing).
        if (self._current is None and not self._queue
                and self._out_size < state.limits.write_high_water):
            self._current = res
            self._dispatch(res, req)
        else:
            queue = self._queue
            if queue is None:
                queue = self._queue = deque()
            if self._current is None and not queue:
                # Held back by the output over its mark, not by a request in flight: if the
                # transport takes it all without pausing, nothing else would call _advance.
                self.loop.call_soon(self._advance_corked)
            queue.append(res)
            if len(queue) >= self.state.limits.max_pipeline:
                self.pause_reading()

    def on_whole_request(self, req: Any) -> None:
        """A request without a body, its head complete: ``on_request`` and ``on_request_end``
        in one call (the parser's fast path for plain heads)."""
        state = self.state
        if (self._current is not None or self._queue or self._closed
                or self._out_size >= state.limits.write_high_water):
            self.on_request(req)  # it waits its turn, or is dropped
            self.on_request_end()
            return
        # PERF: what on_request and on_request_end do for a request that is answered at once,
        # in one call, without their tests for a body, and with _dispatch inlined: 16
        # pipelined, 20.0k -> 19.1k instructions a request (in-process, callgrind).
        res = state.new_response(self, req)
        # PERF: a response ended while the handler runs leaves response_done to this method,
        # which does it in line below instead of a call from end(): 16 pipelined, 15.0k -> 14.6k
        # instructions a request. Cleared before anything can start a task that ends it later.
        res.defer_done = True
        self._reading = self._current = res
        self._activity = (self._activity + 1) & 255
        self._phase = BUSY
        try:
            result = state.handler(res, req)
        except Exception as exc:
            res.defer_done = False
            if res.phase is DONE and self._current is res:  # it ended, then raised
                self.response_done(res)
            self._handler_failed(exc, res)
        else:
            if res.phase is not DONE:
                res.defer_done = False  # (a DONE exchange never calls response_done again)
            elif self._current is res:
                # response_done, in line (but its last case: this request is still being read)
                self._current = None
                if res.closing:
                    self.close_transport()
                elif self._close_after or self._queue or self._final_error is not None:
                    self._advance()
            if result is not None and result.__class__ is not res.__class__ and (
                result.__class__ is CoroutineType or isinstance(result, Coroutine)
            ):
                self._start_task(result, res)
            elif res.phase is PENDING and not res.has_continuation():
                self._unanswered(res, "returned")
        self._reading = None
        if self._current is None and not self._queue:
            if state.draining:
                self._idle()
            else:
                self._phase = IDLE  # from BUSY

    def on_body(self, piece: bytes) -> None:
        self._activity = (self._activity + 1) & 255
        res = self._reading
        if res is not None and res.wants_body():
            try:
                res.feed(piece)
            except Exception as exc:  # an on_data callback failed
                self._handler_failed(exc, res)
        # else: the response ended without reading the body; the rest is discarded

    def on_request_end(self) -> None:
        res = self._reading
        self._reading = None
        self._phase = BUSY
        if res is not None and not res.body_done:
            try:
                res.feed_end()
            except Exception as exc:  # an on_data callback failed
                self._handler_failed(exc, res)
        if self._current is None and not self._queue:
            # PERF: the common case of _idle() inlined.
            if self._parser.in_head or self.state.draining:
                self._idle()
            else:
                self._phase = IDLE  # from BUSY

    # -- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, res: Exchange, req: Any) -> None:
        """Call the handler for ``res`` (inside the caller's cork scope)."""
        try:
            result = self.state.handler(res, req)
        except Exception as exc:
            self._handler_failed(exc, res)
            return
        # PERF: most sync handlers return None or the response (``return res.end(...)``);
        # skipping the ABC isinstance check for those saves 0.3 µs per request.
        if result is not None and result.__class__ is not res.__class__ and (
            result.__class__ is CoroutineType or isinstance(result, Coroutine)
        ):
            self._start_task(result, res)
        elif res.phase is PENDING and not res.has_continuation():
            self._unanswered(res, "returned")

    def _start_task(self, coro: Coroutine[Any, Any, Any], res: Exchange) -> None:
        step = CorkedStep(coro, self, res)
        if EAGER_TASKS:
            task = asyncio.Task(step, loop=self.loop, eager_start=True)  # type: ignore[call-arg]
        else:
            task = self.loop.create_task(step)
        if not task.done():
            res.task = task  # a strong reference: asyncio keeps only weak ones

    def run_async(self, coro: Coroutine[Any, Any, Any], res: Exchange) -> asyncio.Task[Any]:
        """Run a coroutine for ``res`` with corked steps and error handling (``res.run_async``)."""
        step = CorkedStep(coro, self, _Detached(self, res))
        return self.loop.create_task(step)

    def handler_finished(self, res: Exchange, exc: BaseException | None) -> None:
        """An async handler ended (inside its last cork scope)."""
        res.task = None
        if exc is not None:
            self._handler_failed(exc, res)
        elif res.phase is PENDING and not res.has_continuation():
            self._unanswered(res, "finished")
        body_error = res.body_error
        if body_error is not None:
            # The handler is over; the body error it awaited keeps a traceback through the
            # handler's frames, which hold ``res``: a cycle that would keep the response and
            # its body for the garbage collector. Nobody reads that traceback any more.
            body_error.__traceback__ = None
        if self._current is None and (self._queue or self._final_error or self._close_after):
            self._advance()

    def call_user(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a user callback that is not a handler (on_aborted, on_writable): log failures."""
        try:
            return fn(*args)
        except Exception:
            log.exception("callback %r raised", fn)
            return None

    def _unanswered(self, res: Exchange, how: str) -> None:
        req = res.request
        culprit = res.stopped_by
        if culprit is not None:
            log.error("middleware %s stopped the chain for %s %s without answering (a "
                      "middleware that returns a falsy value must answer); answering 500",
                      culprit, req.method, req.path)
            self._answer_error(res, HTTPError(
                500, f"middleware {culprit} stopped the chain without answering"))
            return
        log.error("handler for %s %s %s without responding and without registering "
                  "on_aborted/on_data; answering 500", req.method, req.path, how)
        self._answer_error(res, HTTPError(500, "the handler did not respond"))

    def _handler_failed(self, exc: BaseException, res: Exchange) -> None:
        """A handler raised: let the app's error handler answer, or answer 500."""
        if res.aborted:
            if not isinstance(exc, ClientDisconnected):
                log.error("handler failed after the client went away", exc_info=exc)
            return
        if res.has_responded():
            # Nothing can be answered any more. A malformed body was already answered by
            # _protocol_error before the handler, awaiting that body, got it as an exception:
            # not a new failure (logging it would be a traceback per hostile request).
            if exc is not res.body_error:
                log.error("handler for %s %s failed after its response was sent",
                          res.request.method, res.request.path, exc_info=exc)
            return
        if res.phase is not PENDING and not res.retract_head():  # the head already left
            log.error("handler for %s %s failed after the response head was sent",
                      res.request.method, res.request.path, exc_info=exc)
            return self._answer_error(res, HTTPError(500))  # cuts the connection
        handler = self.state.error_handler
        if handler is not None and not res.erroring:
            res.erroring = True
            try:
                result = handler(exc, res, res.request)
            except Exception as second:
                log.exception("the error handler raised while handling %r", exc)
                exc = second
            else:
                if isinstance(result, Coroutine):
                    self._start_task(result, res)  # an error in it comes back here: 500
                    return
                if res.has_responded():
                    return
        elif not isinstance(exc, HTTPError):
            req = res.request
            log.error("unhandled error in handler for %s %s", req.method, req.path, exc_info=exc)
        self._answer_error(res, exc if isinstance(exc, HTTPError) else HTTPError(500))

    def _answer_error(self, res: Exchange, exc: HTTPError) -> None:
        if res.has_responded():
            return
        if res.phase is not PENDING:  # STREAMING: the head is out, a status can no longer be sent
            log.error("error after the response head was sent; closing the connection")
            res.abort()
            self.abort_transport()
            return
        res.clear_head()
        res.write_status(exc.status)
        for name, value in exc.headers:
            res.write_header(name, value)
        res.end(f"{exc.status} {reason_phrase(exc.status)}: {exc.message}\n"
                if exc.message != reason_phrase(exc.status) else
                f"{exc.status} {exc.message}\n")

    # -- end of a response --------------------------------------------------------------------

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # on_whole_request does on_request's, on_request_end's and response_done's work in
        # line: a subclass extending one of them (the access log) gets the separate calls.
        if cls.on_whole_request is HTTPConnection.on_whole_request and any(
                getattr(cls, name) is not getattr(HTTPConnection, name)
                for name in ("on_request", "on_request_end", "response_done")):
            cls.on_whole_request = ParserSink.on_whole_request  # type: ignore[assignment]

    def response_done(self, res: Exchange) -> None:
        """Called by the exchange once its last byte is queued."""
        if res is not self._current:
            return  # an aborted or already-finished exchange
        self._current = None
        if res.closing:
            # The response said "connection: close": requests pipelined after it are dropped
            # unanswered, as the client was told (RFC 9112 §9.6).
            self.close_transport()
        elif self._close_after or self._queue or self._final_error is not None:
            self._advance()
        elif self._reading is None:
            self._idle()

    def _advance(self) -> None:
        """Dispatch queued requests in order until one stays in flight, then close if due."""
        if self._dispatching:
            return  # the loop below, further up the stack, will continue
        self._dispatching = True
        try:
            while self._current is None and not self._closed:
                queue = self._queue
                if queue:
                    if self._write_paused:
                        return  # the client is not reading: resume_writing continues
                    if self._out_size >= self.state.limits.write_high_water:
                        # Over the mark in this scope: go on after it has been flushed (the
                        # transport may take it all without pausing, then nothing else would).
                        self.loop.call_soon(self._advance_corked)
                        return
                    res = queue.popleft()
                    if self._read_paused and len(queue) < self.state.limits.max_pipeline // 2:
                        self.resume_reading()
                    self._current = res
                    self._dispatch(res, res.request)
                    continue
                if self._final_error is not None:
                    exc, self._final_error = self._final_error, None
                    self.write(error_response(exc.status, exc.message))
                    self.close_transport()
                    return
                if self._close_after:
                    self.close_transport()
                    return
                if self._reading is None:
                    self._idle()
                return
        finally:
            self._dispatching = False

    def _idle(self) -> None:
        if self._parser.in_head:
            # The next pipelined head has begun: its total deadline applies (slowloris).
            self._enter(HEAD)
        elif self.state.draining:
            self.close_transport()
        else:
            self._enter(IDLE)

    def _enter(self, to: ReadPhase) -> None:
        """Move the reading side to ``to``; an illegal move (see READ_MOVES) raises."""
        if not CAN_MOVE[self._phase][to]:
            raise IllegalTransition(f"HTTP connection: cannot move from {self._phase.name} "
                                    f"to {to.name}")
        self._phase = to

    # -- errors from the wire ---------------------------------------------------------------

    def _protocol_error(self, exc: ProtocolError) -> None:
        """The parser refused the input: answer it in order, then close."""
        log.info("bad request from %s: %s (%d)", self.remote_address(), exc.message, exc.status)
        self._parser.close()
        self.pause_reading()
        res = self._reading
        self._reading = None
        if res is not None and not res.body_done:
            # The error is in the body of a request already handed to a response.
            self._close_after = True
            if res is self._current:
                # A handler awaiting the body gets the error and answers it; otherwise the
                # error is the answer.
                if not res.fail_body(exc):
                    self._answer_error(res, exc)
                return
            if res.has_responded():
                # Already answered; its body was being read only to be discarded.
                if self._current is None:
                    self.close_transport()
                return
            if self._queue is not None and res in self._queue:
                self._queue.remove(res)
        self._final_error = exc
        self._close_after = True
        if self._current is None:
            self._advance()

    def _after_upgrade(self, data: bytes, offset: int) -> None:
        """llhttp stopped after an upgrade request; switch protocol or go on with HTTP."""
        res = self._current
        if res is not None and res.upgrade_info is not None and self.state.upgrade_handler:
            self.state.upgrade_handler(self, res, data[offset:])
            return
        # WebSocket: an async handler is still deciding whether to upgrade.
        # Hold the bytes after the request and stop reading; ``upgrade_accepted`` hands them
        # over, and an HTTP answer instead closes the connection (they are not HTTP).
        if (res is not None and res.task is not None and not res.has_responded()
                and self.state.upgrade_handler is not None and not self._closed):
            self._held_upgrade = data[offset:]
            res.closing = True
            self.pause_reading()
            return
        # Upgrade not taken (RFC 9110 §7.8: a server may ignore it): parse on as HTTP/1.1.
        parser = self._parser
        if parser.closed:
            return
        parser.reset()
        rest = data[offset:]
        if rest:
            more = parser.feed(rest)
            if more is not None:
                self._after_upgrade(rest, more)

    # -- for the exchange (ExchangeConnection) -------------------------------------------------

    def pause_reading(self) -> None:
        if not self._read_paused and not self._closed:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and not self._closed:
            self._read_paused = False
            self.transport.resume_reading()

    def remote_address(self) -> str | None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        if isinstance(peer, tuple):
            return str(peer[0])
        return None

    # -- WebSocket hand-over ----------------------------------------------------------------

    def upgrade_accepted(self, res: Exchange) -> None:
        """``res.upgrade`` was called; if an async handler decided late, switch now."""
        held = self._held_upgrade
        if held is not None and res is self._current and self.state.upgrade_handler:
            self._held_upgrade = None
            self.state.upgrade_handler(self, res, held)

    def hand_over(self) -> tuple[Any, list[bytes], bool]:
        """Give up the transport and the queued output (the ``101``) to the protocol that
        takes over; returns ``(transport, queued, reading_paused)``."""
        self.state.unwatch(self)
        self.state.connections.discard(self)
        out, self._out = list(self._out), NOTHING_QUEUED
        self._out_size = 0
        self._closed = True  # this object never writes again
        self._parser.release()
        self._current = self._reading = None  # the upgrade's response: a cycle through res
        self._queue = None
        return self.transport, out, self._read_paused

    def busy_with(self) -> str:
        """What a graceful shutdown waits for on this connection, for its log line."""
        if self._current is not None:
            req = self._current.request
            return f"{req.method} {req.path}"
        return "a request still arriving"

    def shutdown(self) -> None:
        """Graceful shutdown: close after the response in flight, or, if idle, once it has
        stayed quiet for ``drain_idle`` seconds.

        An idle keep-alive connection is not closed at once: its client may have sent a
        request that is still on the wire or in the socket buffer, and closing would lose it
        (under load, every connection has one in flight). It is read on; what arrives is
        answered with ``connection: close`` (``draining``) and the connection then closes.
        """
        self.draining = True
        if self._current is None and self._phase is IDLE:
            self.state.clock.call_later(self.state.limits.drain_idle, self._close_if_idle)
        else:
            self._close_after = True

    def _close_if_idle(self) -> None:
        if not self._closed and self._current is None and self._phase is IDLE:
            self.close_transport()


class _Detached:
    """Owner of a ``res.run_async`` task: reports failures like a handler's."""

    __slots__ = ("_conn", "_res")

    def __init__(self, conn: HTTPConnection, res: Exchange) -> None:
        self._conn = conn
        self._res = res

    def step_done(self, exc: BaseException | None) -> None:
        if exc is not None:
            self._conn._handler_failed(exc, self._res)
