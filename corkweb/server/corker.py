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
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["Corker", "CorkedProtocol", "CorkedStep"]


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


class CorkedProtocol(asyncio.Protocol):
    """Base of every corkweb protocol: owns the output buffer and the transport's writes.

    Subclasses call :meth:`write` (never ``transport.write``) and wrap callbacks into user code
    in ``prev = self.cork()`` / ``self.uncork(prev)``. Scopes nest freely: an inner scope on the
    same connection costs a comparison and writes nothing.
    """

    __slots__ = (
        "transport", "_corker", "_out", "_out_size", "_dirty", "_closed", "_write_paused",
    )

    def __init__(self, corker: Corker) -> None:
        self._corker = corker
        self._out: list[bytes] = []
        self._out_size = 0
        self._dirty = False
        self._closed = False
        self._write_paused = False
        self.transport: Any = None

    # -- output ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data``; it leaves when the current scope or loop tick ends."""
        if self._closed:
            return  # the peer is gone: nothing can be delivered, and nothing must raise
        self._out.append(data)
        self._out_size += len(data)
        if self._corker.current is not self and not self._dirty:
            self._dirty = True
            self._corker.mark_dirty(self)

    def flush(self) -> None:
        """Hand everything queued to the transport in one ``write``."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
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
        self._out.clear()
        self._out_size = 0
        self._closed = True
        if self._corker.current is self:
            self._corker.current = None
        self.transport.abort()

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

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closed = True
        self._out.clear()
        self._out_size = 0
        if self._corker.current is self:
            self._corker.current = None


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
        conn = self._conn
        prev = conn.cork()
        try:
            return self._coro.send(value)
        except StopIteration:
            self._owner.step_done(None)
            raise
        except asyncio.CancelledError:
            self._owner.step_done(None)
            raise
        except Exception as exc:
            self._owner.step_done(exc)
            raise StopIteration from None
        finally:
            conn.uncork(prev)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:  # type: ignore[override]
        conn = self._conn
        prev = conn.cork()
        try:
            if val is None and tb is None:
                return self._coro.throw(typ)
            return self._coro.throw(typ, val, tb)  # pragma: no cover - legacy 3-arg form
        except StopIteration:
            self._owner.step_done(None)
            raise
        except asyncio.CancelledError:
            self._owner.step_done(None)
            raise
        except Exception as exc:
            self._owner.step_done(exc)
            raise StopIteration from None
        finally:
            conn.uncork(prev)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, None]:
        return self._coro.__await__()  # pragma: no cover - Task never awaits it
