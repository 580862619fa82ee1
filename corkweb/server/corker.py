"""The corker: the only code in corkweb that calls ``transport.write``.

Every byte a connection sends goes through :meth:`CorkedProtocol.write`, which only appends to
the connection's buffer. The buffer leaves in a single ``transport.write`` (one syscall, one TLS
record batch) when one of these happens:

* the cork scope around a callback into user code ends (rule 1; :meth:`cork`/:meth:`uncork`);
* a step of an async handler ends (rule 2; :class:`CorkedStep` opens a scope per step);
* the event-loop tick ends, for writes made outside any scope — a database client's callback,
  a timer, another thread through ``call_soon_threadsafe`` (rule 3; :meth:`Corker.flush_dirty`);
* another connection is corked on this thread (rule 5: one corked socket per thread).

The contract is DESIGN.md §1; ``tests/test_corking.py`` asserts each rule by counting writes on
a recording transport, and ``tests/test_syscalls.py`` counts send syscalls with strace.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from .speedups import core

__all__ = ["Corker", "CorkedProtocol", "CorkedStep"]


#: What `_out` holds while nothing is queued (see CorkedProtocol.__init__).
NOTHING_QUEUED: tuple[()] = ()


class Corker:
    """Per event loop: which connection is corked now, and who wrote outside a scope."""

    __slots__ = ("loop", "current", "_dirty", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.current: CorkedProtocol | None = None
        self._dirty: list[CorkedProtocol] = []
        self._scheduled = False

    def mark_dirty(self, conn: CorkedProtocol) -> None:
        """Remember ``conn`` for the end-of-tick flush (rule 3)."""
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self.flush_dirty)

    def flush_dirty(self) -> None:
        """Flush every connection written to outside a scope since the last tick."""
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn._dirty = False
            if conn is not self.current:
                conn.flush()


class _PyCorkBase:
    """A corked connection's output queue (the pure-Python twin of ``_speedups.CorkBase``)."""

    __slots__ = ("_corker", "_out", "_out_size", "_dirty", "_closed", "state")

    #: The state shared by the server's connections (``server/state.py``).
    state: Any
    _corker: Corker
    _out: list[bytes] | tuple[()]
    _out_size: int
    _dirty: bool
    _closed: bool

    def write(self, data: bytes) -> None:
        """Queue ``data``; it leaves when the current scope or loop tick ends."""
        if self._closed:
            return  # the peer is gone: nothing can be delivered, and nothing must raise
        out = self._out
        if out is NOTHING_QUEUED:
            self._out = [data]
        else:
            out.append(data)  # type: ignore[union-attr]
        self._out_size += len(data)
        if self._corker.current is not self and not self._dirty:
            self._dirty = True
            self._corker.mark_dirty(self)  # type: ignore[arg-type]


# PERF: with the C core (server/speedups.py) the queue's fields and write() are C, and an
# exchange's end() queues its answer without a call into Python: 16 pipelined, 16.8k -> 15.8k
# instructions a request (in-process, callgrind).
if TYPE_CHECKING:
    CorkBase = _PyCorkBase
else:
    CorkBase = _PyCorkBase if core is None else core.CorkBase
if core is not None:
    core.configure_queue(NOTHING_QUEUED)


class CorkedProtocol(CorkBase, asyncio.Protocol):
    """Base of every corkweb protocol: owns the output buffer and the transport's writes.

    Subclasses call :meth:`write` (never ``transport.write``) and wrap callbacks into user code
    in ``prev = self.cork()`` / ``self.uncork(prev)``. Scopes nest freely: an inner scope on the
    same connection costs a comparison and writes nothing.
    """

    __slots__ = ("transport", "_write_paused", "_waiter", "_socket_info")

    def __init__(self, corker: Corker) -> None:
        self._corker = corker
        # PERF: nothing queued is the shared empty tuple, a list exists only while bytes wait:
        # an idle connection holds no list of its own (80 bytes less per connection, for a
        # list made per flush, ~100 instructions).
        self._out = NOTHING_QUEUED
        self._out_size = 0
        self._dirty = False
        self._closed = False
        self._write_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.transport: Any = None
        self._socket_info: tuple[Any, Any, bool] | None = None

    # -- output ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Hand everything queued to the transport in one ``write``."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        self._out = NOTHING_QUEUED
        self._out_size = 0
        if not self._closed:
            self.transport.write(data)

    def cork(self) -> CorkedProtocol | None:
        """Open a cork scope on this connection; returns the token for :meth:`uncork`."""
        corker = self._corker
        prev = corker.current
        if prev is not self:
            if prev is not None:
                prev.flush()  # rule 5: corking another socket flushes the corked one
            corker.current = self
        return prev

    def uncork(self, prev: CorkedProtocol | None) -> None:
        """Close the scope opened by :meth:`cork`; the outermost one flushes."""
        if prev is self:
            return
        self._corker.current = prev
        self.flush()

    def queued_mark(self) -> int:
        """A position in what is queued and not yet flushed, for :meth:`take_back`."""
        return len(self._out)

    def take_back(self, mark: int, first: bytes) -> bool:
        """Drop what was queued since ``mark`` if none of it has left yet; ``first`` is the
        piece written at ``mark`` (a flush in between removed it: then nothing is dropped).

        For a handler that fails after starting a streamed answer inside the same cork scope:
        the head never left, so it can be replaced by an error answer (a 500, not a cut
        connection)."""
        out = self._out
        if self._closed or mark >= len(out) or out[mark] is not first:
            return False
        for piece in out[mark:]:
            self._out_size -= len(piece)
        del out[mark:]  # type: ignore[union-attr]
        return True

    def close_transport(self) -> None:
        """Flush what is queued, then close the transport (it finishes sending first)."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._corker.current is self:
            self._corker.current = None
        self.transport.close()

    def abort_transport(self) -> None:
        """Drop the connection at once, discarding anything unsent."""
        self._out = NOTHING_QUEUED
        self._out_size = 0
        self._closed = True
        if self._corker.current is self:
            self._corker.current = None
        self.transport.abort()

    def socket_info(self) -> tuple[Any, Any, bool]:
        """``(peername, sockname, tls)`` of the transport, read once and kept (each read costs
        0.4 µs; hosted ASGI/WSGI apps need them for every request's scope)."""
        if self._socket_info is None:
            info = self.transport.get_extra_info
            self._socket_info = (info("peername"), info("sockname"),
                                 info("sslcontext") is not None)
        return self._socket_info

    def buffered_amount(self) -> int:
        """Bytes queued here plus bytes the transport has not sent yet."""
        size = self._out_size
        if not self._closed:
            size += self.transport.get_write_buffer_size()
        return size

    # -- flow control (the transport calls these) -------------------------------------------

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._waiter is not None:
            self._wake()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closed = True
        self._out = NOTHING_QUEUED
        self._out_size = 0
        if self._corker.current is self:
            self._corker.current = None
        if self._waiter is not None:
            self._wake()  # the sender finds the connection closed

    # -- sending files (static files, res.sendfile) ---------------------------------------------

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wait(self) -> asyncio.Future[None]:
        """A future resolved by ``resume_writing`` or ``connection_lost``: the waiter then
        looks at ``_closed``. It never carries an exception: one raised from the awaiting
        frame, which holds the future, would be a reference cycle keeping the response and
        its request alive until a garbage collection."""
        if self._closed:
            raise ConnectionResetError("the connection is closed")
        waiter = self._waiter = self._corker.loop.create_future()
        return waiter

    async def sendfile(self, fd: int, offset: int, count: int) -> None:
        """Send ``count`` bytes of the open file ``fd`` from ``offset``, after what is queued.

        On a plain TCP or UNIX socket the bytes go zero-copy, kernel to socket, with
        ``os.sendfile``: uvloop does not implement ``loop.sendfile`` (it raises
        NotImplementedError), so the loop is here, waiting for writability between calls —
        that is the backpressure. Over TLS, or where ``os.sendfile`` is missing, the file is
        read in 256 KiB pieces in the default executor (the event loop never blocks on the
        disk) and written after the client has read what was buffered. Raises
        ``ConnectionResetError`` if the client goes away; the caller ends the response.
        """
        self.flush()
        if self._closed:
            raise ConnectionResetError("the connection is closed")
        transport = self.transport
        sock = transport.get_extra_info("socket")
        if (sock is None or transport.get_extra_info("sslcontext") is not None
                or not hasattr(os, "sendfile")):
            await self._sendfile_by_reads(fd, offset, count)
        else:
            await self._sendfile_zero_copy(sock.fileno(), fd, offset, count)

    async def _sendfile_zero_copy(self, sock_fd: int, fd: int, offset: int, count: int) -> None:
        transport = self.transport
        if transport.get_write_buffer_size():
            # Bytes still in the transport's buffer must reach the socket before the file's.
            low, high = transport.get_write_buffer_limits()
            waiter = self._wait()
            transport.set_write_buffer_limits(high=0, low=0)  # pauses now, resumes when empty
            try:
                await waiter
            finally:
                if not self._closed:
                    transport.set_write_buffer_limits(high=high, low=low)
            if self._closed:
                raise ConnectionResetError("the client went away")
        # Anything written while the kernel sends the file waits here, then follows the file.
        held = self.transport = _HeldTransport(transport)
        loop = self._corker.loop
        # Our own descriptor for the socket: add_writer refuses a transport's fd, and if the
        # transport closes meanwhile, its fd number may be reused by another connection —
        # this one still names our socket.
        watch_fd = os.dup(sock_fd)
        try:
            while count > 0:
                if self._closed:
                    raise ConnectionResetError("the connection was closed while sending a file")
                try:
                    sent = os.sendfile(watch_fd, fd, offset, min(count, 0x4000_0000))
                except BlockingIOError:
                    waiter = self._wait()
                    loop.add_writer(watch_fd, self._wake)
                    try:
                        await waiter
                    finally:
                        loop.remove_writer(watch_fd)
                    continue
                except (BrokenPipeError, ConnectionError) as exc:
                    self.abort_transport()
                    raise ConnectionResetError(f"the client went away: {exc}") from exc
                if sent == 0:
                    raise OSError(f"the file ended {count} bytes early (truncated while sent?)")
                offset += sent
                count -= sent
        finally:
            os.close(watch_fd)
            if self.transport is held:
                self.transport = transport
            if held.data and not self._closed:
                transport.write(b"".join(held.data))

    async def _sendfile_by_reads(self, fd: int, offset: int, count: int) -> None:
        loop = self._corker.loop
        while count > 0:
            data = await loop.run_in_executor(None, os.pread, fd, min(count, 0x40000), offset)
            if not data:
                raise OSError(f"the file ended {count} bytes early (truncated while sent?)")
            if self._closed:
                raise ConnectionResetError("the client went away")
            self.write(data)
            self.flush()
            offset += len(data)
            count -= len(data)
            if self._write_paused and count:
                await self._wait()
                if self._closed:
                    raise ConnectionResetError("the client went away")


class _HeldTransport:
    """Stands in for the transport while the kernel sends a file: holds writes, forwards the
    rest (close, abort, flow control)."""

    __slots__ = ("_transport", "data")

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.data.append(data)

    def get_write_buffer_size(self) -> int:
        return int(self._transport.get_write_buffer_size()) + sum(map(len, self.data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# _ENDING: ``send`` and ``throw`` drop their locals holding exceptions before the exception
# leaves. An exception whose traceback includes a frame that holds it in a local is a reference
# cycle (exception -> traceback -> frame -> local -> exception), and the handler's finished
# frames, with the request, the response and its body, would hang on it until a garbage
# collection: memory held after every async request.


class CorkedStep(Coroutine[Any, Any, None]):
    """Drives a handler's coroutine so that every step runs inside a cork scope (rule 2).

    asyncio's Task accepts any :class:`collections.abc.Coroutine`; it calls :meth:`send` and
    :meth:`throw` for each step, and this class opens a scope on ``conn`` around each of them.
    When the coroutine ends or fails, ``owner.step_done(exc)`` runs *inside the last scope*, so
    an error answer (or the responses that pipelining held back) leave in the same write.
    """

    __slots__ = ("_coro", "_conn", "_owner")

    def __init__(self, coro: Coroutine[Any, Any, Any], conn: CorkedProtocol, owner: Any) -> None:
        self._coro = coro
        self._conn = conn
        self._owner = owner

    def send(self, value: Any) -> Any:
        # PERF: cork() and uncork() inlined, and no flush() call when the step wrote nothing:
        # a handler awaiting 20 database queries takes 21 steps, most of which only wait
        # (callgrind: the wrapper costs 2.0k instructions per step over a bare Task, was 3.4k).
        conn = self._conn
        corker = conn._corker
        prev = corker.current
        if prev is not conn:
            if prev is not None:
                prev.flush()  # rule 5
            corker.current = conn
        ending: BaseException | None = None
        try:
            try:
                return self._coro.send(value)
            except (StopIteration, asyncio.CancelledError) as exc:
                ending = exc
                failure: Exception | None = None
            except Exception as exc:
                ending, failure = StopIteration(), exc
            # Outside the except blocks: step_done may dispatch the next pipelined request,
            # whose errors must not be chained to this one ("During handling of the above
            # exception...") in the logs.
            self._owner.step_done(failure)
            failure = None  # see _ENDING
            raise ending
        finally:
            ending = None  # see _ENDING
            if prev is not conn:
                corker.current = prev
                if conn._out:
                    conn.flush()

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        conn = self._conn
        prev = conn.cork()
        ending: BaseException | None = None
        try:
            try:
                if val is None and tb is None:
                    return self._coro.throw(typ)
                return self._coro.throw(typ, val, tb)  # pragma: no cover - legacy 3-arg form
            except (StopIteration, asyncio.CancelledError) as exc:
                ending = exc
                failure: Exception | None = None
            except Exception as exc:
                ending, failure = StopIteration(), exc
            self._owner.step_done(failure)  # outside the except blocks, as in send()
            failure = None  # see _ENDING
            raise ending
        finally:
            ending = typ = val = tb = None  # see _ENDING: ``typ`` is the thrown exception
            conn.uncork(prev)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, None]:
        return self._coro.__await__()  # pragma: no cover - Task never awaits it
