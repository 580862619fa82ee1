"""The WebSocket connection: frames in through the wire parsers, behaviours called corked.

``websocket_upgrade`` is the server's upgrade handler: when a route accepted an upgrade
(``res.upgrade``), ``HTTPConnection`` hands it the connection, and it moves the transport and
the queued ``101`` answer to a new :class:`WebSocketConnection` — so the ``101`` and what the
``open`` behaviour sends leave in one write.

Every call into user code is a cork scope (DESIGN.md §1 rule 1); a ``data_received`` is one
scope around all the messages it carried, so echoing sixteen messages of one read costs one
``transport.write``. Like ``HTTPConnection``, nothing here calls ``transport.write``: output
goes through :meth:`CorkedProtocol.write`.

Backpressure: the transport's high-water mark is 0, so ``pause_writing`` fires as soon as the
kernel refuses bytes and ``resume_writing`` once everything left — that is when the ``drain``
behaviour runs. Past ``max_backpressure`` sends are DROPPED (or the socket is closed when
``close_on_backpressure_limit``) and reading pauses, so a client that never reads costs
bounded memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from enum import IntEnum
from types import CoroutineType
from typing import Any, Protocol

from ..errors import IllegalTransition
from ..wire.websocket import (
    BINARY,
    PING,
    PONG,
    SMALL_HEADS,
    TEXT,
    DeflateParser,
    FrameParser,
    SendStatus,
    WebSocketError,
    encode_close,
    encode_frame,
)
from .corker import CorkedProtocol, CorkedStep
from .state import ServerState

__all__ = ["WebSocketConnection", "websocket_upgrade"]

log = logging.getLogger("corkweb.error")

#: Seconds to wait for the peer's close frame after sending ours, then drop the connection.
CLOSE_TIMEOUT = 5.0
#: The reason sent with close code 1011 when a behaviour raised (RFC 6455 §7.4.1): the client
#: learns the server failed, the details stay in the server log.
INTERNAL_ERROR = "internal server error"

BACKPRESSURE, SUCCESS, DROPPED = SendStatus.BACKPRESSURE, SendStatus.SUCCESS, SendStatus.DROPPED
# Bytes queued in one cork scope above which sends report BACKPRESSURE even before the
# transport has seen them (the same mark HTTP responses use by default, Limits.write_high_water).
CORKED_HIGH_WATER = 256 * 1024


class WsPhase(IntEnum):
    """Where a WebSocket connection stands in its close handshake (RFC 6455 §7)."""

    OPEN = 0  # messages flow both ways
    CLOSING = 1  # our close frame is out; waiting (at most CLOSE_TIMEOUT) for the peer's
    CLOSED = 2  # the handshake is over or the connection was dropped: nothing is sent


OPEN, CLOSING, CLOSED = WsPhase.OPEN, WsPhase.CLOSING, WsPhase.CLOSED

#: The legal moves; CLOSED -> CLOSED because every way out (the peer's close, a failure, the
#: transport's end) may follow another.
WS_MOVES: dict[WsPhase, frozenset[WsPhase]] = {
    OPEN: frozenset((CLOSING, CLOSED)),
    CLOSING: frozenset((CLOSED,)),
    CLOSED: frozenset((CLOSED,)),
}
# The table as a matrix of booleans (a tuple index, in C; an IntEnum hashes in Python).
_CAN_MOVE = tuple(tuple(to in WS_MOVES[frm] for to in WsPhase) for frm in WsPhase)
# Corked bytes above which ``get_buffered_amount`` hands them to the socket first: the size
# of uWebSockets' cork buffer, which flushes itself when full.
CORK_FLUSH = 16 * 1024


class UpgradeTarget(Protocol):
    """What an accepted upgrade hands to the WebSocket connection (the framework's
    ``corkweb.websocket.UpgradeInfo``): the route's behaviour and settings, the negotiated
    subprotocol and compression, and how to make the ``ws`` object handed to the behaviours."""

    route: Any
    user_data: Any
    protocol: str | None
    deflate: Any
    remote_address: str | None

    def socket_for(self, conn: Any) -> Any: ...


def websocket_upgrade(http: Any, res: Any, rest: bytes) -> None:
    """Hand the HTTP connection's transport to a WebSocket connection (ServerState hook)."""
    info: UpgradeTarget = res.upgrade_info
    transport, out, read_paused = http.hand_over()
    conn = WebSocketConnection(http.state, info)
    conn.transport = transport
    conn._out = out
    conn._out_size = sum(len(piece) for piece in out)
    transport.set_protocol(conn)
    if read_paused:
        transport.resume_reading()
    conn.start(rest)


class WebSocketConnection(CorkedProtocol):
    """asyncio protocol of one open WebSocket."""

    __slots__ = (
        "loop", "route", "ws", "protocol", "_parser", "_deflate", "_phase",
        "_on_message", "_max_backpressure", "_timer", "_reads", "_seen_reads", "_idle_ticks",
        "_close_timer", "_close_called", "_tasks", "_read_paused", "_backpressured",
        "_client_address", "_lifetime_timer",
    )
    state: ServerState  # a slot of CorkedProtocol's

    def __init__(self, state: ServerState, info: UpgradeTarget) -> None:
        super().__init__(state.corker)
        self.state = state
        self.loop = state.loop
        # The client's address as the upgrade request saw it: behind a trusted proxy that is
        # the forwarded one, not the proxy's.
        self._client_address = info.remote_address
        route = self.route = info.route
        self.protocol = info.protocol
        self.ws = info.socket_for(self)
        self._deflate: DeflateParser | None = None
        self._parser: FrameParser | DeflateParser
        if info.deflate is not None:
            self._parser = self._deflate = DeflateParser(self, info.deflate,
                                                         route.max_payload_length)
        else:
            self._parser = FrameParser(self, route.max_payload_length)
        self._phase: WsPhase = OPEN
        self._on_message = route.message
        self._max_backpressure = route.max_backpressure
        self._timer: asyncio.TimerHandle | None = None
        self._reads = 0
        self._seen_reads = 0
        self._idle_ticks = 0
        self._close_timer: asyncio.TimerHandle | None = None
        self._close_called = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._read_paused = False
        self._backpressured = False
        self._lifetime_timer: asyncio.TimerHandle | None = None

    def start(self, rest: bytes) -> None:
        """Register, call ``open``, then parse what came after the handshake."""
        self.state.connections.add(self)
        self.transport.set_write_buffer_limits(high=0)  # see the module docstring
        if self.route.idle_timeout:
            self._timer = self.state.clock.call_later(self.route.idle_timeout / 2, self._on_tick)
        if self.route.max_lifetime:
            self._lifetime_timer = self.state.clock.call_later(self.route.max_lifetime * 60,
                                                               self._lifetime_over)
        prev = self.cork()
        try:
            if self.route.open is not None:
                self._call(self.route.open, self.ws)
            if self.state.draining:
                self.end(1001, "server shutting down")
            elif rest and self._phase is OPEN:
                self._feed(rest)
        finally:
            self.uncork(prev)

    # -- asyncio.Protocol -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._reads += 1
        # PERF: CorkedProtocol.cork()/uncork() inlined, as in HTTPConnection.data_received.
        corker = self._corker
        prev = corker.current
        if prev is not self:
            if prev is not None:
                prev.flush()
            corker.current = self
        try:
            # PERF: _feed inlined (one call less per read): 22.8k -> 22.3k instructions an
            # echoed message (in-process, callgrind).
            if self._phase is not CLOSED:
                try:
                    self._parser.feed(data)
                except WebSocketError as exc:
                    log.info("ws %s: closing with %d: %s", self.route.path, exc.code, exc.message)
                    self._fail(exc.code, exc.message)
        finally:
            if prev is not self:
                corker.current = prev
                self.flush()

    def _feed(self, data: bytes) -> None:
        if self._phase is CLOSED:
            return
        try:
            self._parser.feed(data)
        except WebSocketError as exc:
            log.info("ws %s: closing with %d: %s", self.route.path, exc.code, exc.message)
            self._fail(exc.code, exc.message)

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost reports 1006 if no close came

    def pause_writing(self) -> None:
        super().pause_writing()
        self._backpressured = True
        self._over_limit()

    def _over_limit(self) -> bool:
        """Over max_backpressure? Then stop reading until the client drains (resume_writing):
        a client that does not read stops being read, and its memory stays bounded."""
        if self.buffered_amount() <= self._max_backpressure:
            return False
        if not self._read_paused and not self._closed:
            self._read_paused = True
            self.transport.pause_reading()
        return True

    def set_reading(self, on: bool) -> None:
        """``ws.pause()``/``ws.resume()``: stop or restart reading from the client."""
        if self._closed or on != self._read_paused:
            return
        self._read_paused = not on
        if on:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._read_paused and not self._closed:
            self._read_paused = False
            self.transport.resume_reading()
        if self._backpressured:
            self._backpressured = False
            drain = self.route.drain
            if drain is not None and self._phase is OPEN:
                prev = self.cork()
                try:
                    self._call(drain, self.ws)
                finally:
                    self.uncork(prev)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._enter(CLOSED)
        for timer in (self._timer, self._close_timer, self._lifetime_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._close_timer = self._lifetime_timer = None
        self._closed_callback(1006, "")
        # Break the cycles through this connection (parser <-> sink, ws <-> connection) so
        # that it goes with its last reference: the ``ws`` the application may keep still
        # works (its sends return DROPPED), but no longer holds the parser and its buffers.
        self._parser.release()
        del self.ws
        state = self.state
        state.connections.discard(self)
        if state.draining and state.on_empty is not None and not state.on_empty.done():
            state.on_empty.set_result(None)

    # -- parser sink ----------------------------------------------------------------------

    def on_message(self, data: str | bytes, opcode: int) -> None:
        handler = self._on_message
        if handler is None or self._phase is not OPEN:
            return
        # PERF: _call inlined for the one callback that runs per message.
        try:
            result = handler(self.ws, data, opcode)
        except Exception:
            log.exception("ws %s: message handler raised", self.route.path)
            self.end(1011, INTERNAL_ERROR)
            return
        # PERF: an echoing handler returns send()'s SendStatus; the ABC isinstance check
        # costs ~80 ns a message (timeit), the class tests before it ~6 ns.
        if result is not None and result.__class__ is not SendStatus and (
                result.__class__ is CoroutineType or isinstance(result, Coroutine)):
            self._start_task(result)

    def on_ping(self, payload: bytes) -> None:
        if self._phase is OPEN:
            if self._over_limit():
                return  # a ping flood from a client that does not read: no more pongs
            self.write(encode_frame(PONG, payload))  # §5.5.2: answer with the same payload
            if self.route.ping is not None:
                self._call(self.route.ping, self.ws, payload)

    def on_pong(self, payload: bytes) -> None:
        if self.route.pong is not None and self._phase is OPEN:
            self._call(self.route.pong, self.ws, payload)

    def on_close(self, code: int, reason: str) -> None:
        if self._phase is OPEN:
            # Echo the close (§5.5.1) with the peer's code, then close TCP (server side first).
            self.write(encode_close(code, ""))
        self._enter(CLOSED)
        self.close_transport()
        self._closed_callback(code, reason)

    # -- sending ----------------------------------------------------------------------------

    def send_message(self, payload: bytes, opcode: int, compress: bool | None,
                     fin: bool) -> SendStatus:
        """Queue one data message; returns BACKPRESSURE, SUCCESS or DROPPED."""
        if self._deflate is not None and compress is not False and fin and (
                opcode == TEXT or opcode == BINARY) and self._phase is OPEN:
            return self.send_frame(self._deflate.encode(payload, opcode))
        # PERF: the common case — a whole message under 126 bytes, within the backpressure
        # limit — with encode_frame and send_frame inlined: 0.15 µs less per echoed message
        # (2.41 -> 2.27 µs in-process, 16 messages per read).
        n = len(payload)
        if n < 126 and fin and self._phase is OPEN:
            pending = self.transport.get_write_buffer_size()
            if pending + self._out_size <= self._max_backpressure:
                self.write(SMALL_HEADS[opcode][n] + payload)
                if pending or self._write_paused or self._out_size > CORKED_HIGH_WATER:
                    self._mark_backpressure()
                    return BACKPRESSURE
                return SUCCESS
        return self.send_frame(encode_frame(opcode, payload, fin))

    def send_frame(self, frame: bytes) -> SendStatus:
        """Queue a serialised frame (also the pub/sub subscriber interface)."""
        if self._phase is not OPEN:
            return DROPPED
        pending = self.transport.get_write_buffer_size()
        if pending + self._out_size > self._max_backpressure:
            if self.route.close_on_backpressure_limit:
                log.info("ws %s: closing, over max_backpressure", self.route.path)
                self.close_now()
            else:
                self._over_limit()
            return DROPPED
        self.write(frame)
        if pending or self._write_paused or self._out_size > CORKED_HIGH_WATER:
            self._mark_backpressure()
            return BACKPRESSURE
        return SUCCESS

    def socket_buffered(self) -> int:
        """Bytes the transport holds because the kernel refused them (``ws.get_buffered_amount``).

        Corked bytes are not counted; past ``CORK_FLUSH`` they are handed to the socket first,
        as uWebSockets does when its cork buffer fills, so a loop that sends until this grows
        fills the socket and stops, and ``drain`` follows. A socket that is no longer open
        reports ``max_backpressure``: nothing more can be sent, and such loops end.
        """
        if self._phase != OPEN or self._closed:
            return self._max_backpressure
        if self._out_size > CORK_FLUSH:
            self.flush()
        return int(self.transport.get_write_buffer_size())

    def _lifetime_over(self) -> None:
        self._lifetime_timer = None
        prev = self.cork()
        try:
            self.end(1001, "maximum lifetime reached")
        finally:
            self.uncork(prev)

    def _mark_backpressure(self) -> None:
        """A send returned BACKPRESSURE: ``drain`` will follow once the data is out."""
        if not self._backpressured:
            self._backpressured = True
            if not self._write_paused:
                # Over the mark inside a cork scope, the transport has not seen the bytes and
                # may never pause (the kernel can take them all): look once the scope flushed.
                self.loop.call_soon(self._drain_if_flushed)

    def _drain_if_flushed(self) -> None:
        if (self._backpressured and not self._write_paused and not self._closed
                and not self._out and not self.transport.get_write_buffer_size()):
            self.resume_writing()

    def end(self, code: int, reason: str) -> None:
        """Send a close frame and wait (at most CLOSE_TIMEOUT) for the peer's."""
        if self._phase is not OPEN:
            return
        self._enter(CLOSING)
        self.write(encode_close(code, reason))
        self._close_timer = self.state.clock.call_later(CLOSE_TIMEOUT, self._close_timed_out)
        self._closed_callback(code, reason)

    def close_now(self) -> None:
        """Drop the connection without a close handshake."""
        if self._phase is CLOSED and self._closed:
            return
        self._enter(CLOSED)
        self.abort_transport()
        self._closed_callback(1006, "")

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (§7.1.7): a close frame with ``code``, then close TCP."""
        if self._phase is OPEN:
            self.write(encode_close(code, reason))
        self._enter(CLOSED)
        self.close_transport()
        self._closed_callback(code, reason)

    def _close_timed_out(self) -> None:
        self._close_timer = None
        if not self._closed:
            log.info("ws %s: no close frame from the peer; dropping", self.route.path)
            self.abort_transport()

    def _closed_callback(self, code: int, reason: str) -> None:
        """Run the ``close`` behaviour exactly once, and leave every topic."""
        if self._close_called:
            return
        self._close_called = True
        ws = self.ws
        prev = self.cork()
        try:
            ws._unsubscribe_all()
            if self.route.close is not None:
                self._call(self.route.close, ws, code, reason)
        finally:
            self.uncork(prev)

    def busy_with(self) -> str:
        """What a graceful shutdown waits for on this connection, for its log line."""
        return f"WebSocket {self.route.path} (closing)"

    def shutdown(self) -> None:
        """Graceful shutdown: close 1001 (going away, §7.4.1)."""
        prev = self.cork()
        try:
            self.end(1001, "server shutting down")
        finally:
            self.uncork(prev)

    # -- timers -----------------------------------------------------------------------------

    def _on_tick(self) -> None:
        """Every idle_timeout / 2: ping a silent peer, then close it one tick later."""
        self._timer = None
        if self._phase is not OPEN:
            return
        if self._reads != self._seen_reads:
            self._seen_reads = self._reads
            self._idle_ticks = 0
        else:
            self._idle_ticks += 1
        if self._idle_ticks >= 2:
            log.info("ws %s: idle timeout", self.route.path)
            prev = self.cork()
            try:
                self._fail(1001, "idle timeout")
            finally:
                self.uncork(prev)
            return
        if self._idle_ticks == 1 and self.route.send_pings_automatically:
            self.write(encode_frame(PING, b""))  # flushed at the end of this tick
        self._timer = self.state.clock.call_later(self.route.idle_timeout / 2, self._on_tick)

    # -- user code --------------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call a behaviour (inside the caller's cork scope); run it as a task if async."""
        try:
            result = fn(*args)
        except Exception:
            log.exception("ws %s: %s handler raised", self.route.path,
                          getattr(fn, "__name__", fn))
            self.end(1011, INTERNAL_ERROR)  # no-op once closing (a close handler raised)
            return
        if result is not None and isinstance(result, Coroutine):
            self._start_task(result)

    def call_user(self, fn: Callable[..., Any], *args: Any) -> None:
        self._call(fn, *args)

    def _start_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self.loop.create_task(CorkedStep(coro, self, self))
        self._tasks.add(task)  # a strong reference: asyncio keeps only weak ones
        task.add_done_callback(self._tasks.discard)

    def step_done(self, exc: BaseException | None) -> None:
        """An async behaviour ended (CorkedStep's owner interface)."""
        if exc is not None:
            log.error("ws %s: async handler raised", self.route.path, exc_info=exc)
            self.end(1011, INTERNAL_ERROR)

    def _enter(self, to: WsPhase) -> None:
        """Move to ``to``; an illegal move (see WS_MOVES) raises."""
        if not _CAN_MOVE[self._phase][to]:
            raise IllegalTransition(f"ws {self.route.path}: cannot move from "
                                    f"{self._phase.name} to {to.name}")
        self._phase = to

    def is_closed(self) -> bool:
        return self._phase is not OPEN

    def remote_address(self) -> str | None:
        if self._client_address is not None:
            return self._client_address
        peer = self.transport.get_extra_info("peername") if self.transport else None
        if isinstance(peer, tuple):
            return str(peer[0])
        return None

