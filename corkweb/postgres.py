"""PostgreSQL on asyncpg: a connection pool tied to the app's lifespan, errors answered as HTTP.

::

    from corkweb import App
    from corkweb.postgres import Postgres

    app = App()
    db = Postgres(app, "postgresql://app@localhost/app", max_size=10)

    @app.get("/items/:id<int>")
    async def item(res, req):
        row = await db.fetchrow("SELECT id, name FROM item WHERE id = $1",
                                req.get_parameter("id"))
        ...
        async with db.connection() as conn:      # several statements on one connection
            ...
        async with db.transaction() as conn:     # ... inside a transaction
            ...

``Postgres(app, ...)`` registers itself with the app's lifespan: each worker opens its own
pool in ``on_start`` and closes it in ``on_shutdown`` (docs/databases.md).
In typed handlers, ``conn=Depends(db.session)`` lends a connection for the request.

Errors leave a ``connection()`` / ``transaction()`` block or a shortcut as HTTP errors the
app answers without any handler of its own:

* no free connection within ``acquire_timeout`` (the pool is exhausted): 503 with
  ``Retry-After``; the wait is bounded, never a hang;
* the database cannot be reached, or the connection died mid-request (server restarted,
  session terminated): 503; the dead connection is dropped and the pool opens new ones when
  the server is back;
* a statement that ran longer than ``query_timeout`` (the query is cancelled on the server; a
  kept prepared statement is bounded by the pool's watch, ending between ``query_timeout``
  and 1.25 times it, any other by asyncpg's timer) or was cancelled by the server
  (``statement_timeout``): 503;
* a unique, exclusion or foreign-key violation: 409 naming the constraint; a NOT NULL or
  CHECK violation: 422 (the app let bad input through);
* a serialization failure or a deadlock: 503 with ``Retry-After`` (the client may retry).

Any other database error propagates unchanged (logged, answered 500). The same answers are
registered as the app's error handlers for those asyncpg classes, for errors raised outside a
block (a typed handler's ``Depends(db.session)`` connection).

Why not asyncpg's own ``Pool``: per request it spends a task in ``asyncio.shield`` on
release, another in ``wait_for`` when acquiring with a timeout, a proxy object around the
connection, and a round trip to the server for its reset query (``RESET ALL``, ``CLOSE ALL``,
``UNLISTEN *``, advisory unlocks) on every release — about 30 µs of CPU per request over a held
connection, against about 3 µs for this pool (``python -m benchmarks.pool_cost``), and 40 % of
the server CPU of a one-query request. This pool hands out connections without a task,
returns them without an ``await`` and resets a connection only when it may carry session
state:

* a connection left inside a transaction is rolled back and reset;
* a statement that can leave state behind in the session — ``SET`` (but not ``SET LOCAL``),
  ``RESET``, ``LISTEN``, ``DECLARE``, ``PREPARE``, ``DEALLOCATE``, ``LOAD``, ``DISCARD``, ``DO``,
  ``CREATE TEMP``, ``set_config()``, session-level advisory locks — marks its connection,
  which gets asyncpg's full reset when released. The statement text is checked once (the
  answer is cached per text).

Session state changed *inside* a server-side function (a PL/pgSQL function that runs ``SET``)
is not visible in the statement text: pass ``reset="always"`` to reset on every release, as
asyncpg's pool does. Session settings every request needs belong in ``server_settings=``
(applied when a connection is opened) or in ``SET LOCAL`` inside a transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from .error_handling import render_error
from .errors import HTTPError, ServiceUnavailable, UnprocessableContent
from .postgres_connection import (
    StatementWatch,
    may_leave_session_state,
    tracked_connection_class,
)

__all__ = ["Postgres", "PoolTimeout", "may_leave_session_state"]

log = logging.getLogger("corkweb.postgres")

class PoolTimeout(ServiceUnavailable):
    """503: no connection became free within the pool's ``acquire_timeout``."""


def _retry_after(seconds: int) -> list[tuple[str, str]]:
    return [("retry-after", str(seconds))]


class Postgres:
    """A pool of asyncpg connections for one worker; see the module docstring.

    ``Postgres(app, dsn, *, min_size=1, max_size=10, acquire_timeout=5.0, query_timeout=30.0,
    reset="auto", retry_after=1, init=None, **connect_kwargs)``. ``app`` may be None: then
    call :meth:`open` and :meth:`close` yourself. ``connect_kwargs`` go to
    ``asyncpg.connect`` (``server_settings``, ``statement_cache_size``, ``ssl``, ...);
    ``init(conn)`` runs on every new connection (register codecs there).
    """

    def __init__(self, app: Any = None, dsn: str | None = None, *, min_size: int = 1,
                 max_size: int = 10, acquire_timeout: float = 5.0,
                 query_timeout: float | None = 30.0, reset: str = "auto",
                 retry_after: int = 1,
                 init: Callable[[Any], Awaitable[Any]] | None = None,
                 **connect_kwargs: Any) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(f"need 0 <= min_size <= max_size and max_size >= 1, got "
                             f"min_size={min_size}, max_size={max_size}")
        if reset not in ("auto", "always"):
            raise ValueError(f"reset must be 'auto' or 'always', got {reset!r}")
        if acquire_timeout <= 0:
            raise ValueError(f"acquire_timeout must be > 0 seconds, got {acquire_timeout!r}")
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self.query_timeout = query_timeout
        self.reset_always = reset == "always"
        self.retry_after = retry_after
        self._init = init
        self._connect_kwargs = connect_kwargs
        # Statement texts each connection keeps prepared: as many as asyncpg's own statement
        # cache holds, and none when that cache is off (``statement_cache_size=0``, for
        # PgBouncer in transaction mode, where named statements do not survive).
        self._reuse_statements = int(connect_kwargs.get("statement_cache_size", 100))
        self._connection_class: type | None = None
        # Bounds the kept prepared statements to query_timeout (no timer per statement).
        self._watch: StatementWatch | None = None
        self._idle: list[Any] = []
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._size = 0  # open connections, idle or lent, plus those being opened
        self._background: set[asyncio.Task[None]] = set()  # resets after interruptions
        self._drained: asyncio.Event | None = None  # set when all come back (while closing)
        self._open = False
        if app is not None:
            app.on_start(self.open)
            app.on_shutdown(self.close)
            # Database errors that escape outside a block of this pool (a typed handler's
            # ``Depends(db.session)`` connection, or one taken with ``acquire``) are answered
            # the same way.
            for error_class in _mapped_error_classes():
                app.on_error(error_class, self._answer_error)

    def __repr__(self) -> str:
        return (f"<Postgres size={self._size} idle={len(self._idle)} "
                f"waiting={len(self._waiters)} max={self.max_size}>")

    # -- lifespan --------------------------------------------------------------------------

    async def open(self) -> None:
        """Open ``min_size`` connections; raises when the database cannot be reached."""
        if self._open:
            raise RuntimeError("this Postgres pool is already open")
        if self.query_timeout is not None and self._reuse_statements > 0:
            self._watch = StatementWatch(self.query_timeout, self._statement_expired)
            self._watch.start()
        self._connection_class = tracked_connection_class(self._reuse_statements, self._watch)
        self._open = True
        self._size += self.min_size
        opened = await asyncio.gather(*(self._connect() for _ in range(self.min_size)),
                                      return_exceptions=True)
        failures = [r for r in opened if isinstance(r, BaseException)]
        for conn in opened:
            if not isinstance(conn, BaseException):
                # Requests may already wait for these (``_open`` is set, and with
                # ``min_size == max_size`` every slot is counted): hand them over, or they
                # would sit idle while those requests time out.
                self._put_back(conn)
        if failures:
            self._size -= len(failures)
            await self.close()
            raise failures[0]

    async def close(self) -> None:
        """Close the pool: requests holding or waiting for a connection get ``acquire_timeout``
        to finish, then waiters get a 503 and the connections still lent are closed when they
        come back."""
        if self._open and (self._size > len(self._idle) or self._waiters):
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), self.acquire_timeout)
            except asyncio.TimeoutError:
                log.warning("closing the database pool with %d connection(s) still lent "
                            "and %d request(s) waiting", self._size - len(self._idle),
                            len(self._waiters))
            finally:
                self._drained = None
        self._open = False
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ServiceUnavailable("the database pool is closing"))
        idle, self._idle = self._idle, []
        self._size -= len(idle)
        await asyncio.gather(*(conn.close(timeout=5) for conn in idle), return_exceptions=True)
        if self._watch is not None:
            self._watch.stop()
            self._watch = None

    @property
    def size(self) -> int:
        """Connections open (idle or lent) or being opened."""
        return self._size

    @property
    def idle(self) -> int:
        return len(self._idle)

    # -- leasing -----------------------------------------------------------------------------

    async def session(self) -> AsyncIterator[Any]:
        """A dependency for typed handlers: ``conn=Depends(db.session)`` lends a connection
        for the request; it comes back (reset if needed) after the answer has been sent."""
        conn = await self.acquire()
        try:
            yield conn
        except BaseException as exc:
            try:
                await self._give_back(conn, exc)
            except HTTPError:
                pass  # the app's error handlers have already answered ``exc`` itself
            raise
        await self._give_back(conn, None)

    def _answer_error(self, error: BaseException, res: Any, req: Any) -> None:
        """The app's error handler for database errors raised outside a block."""
        mapped = _query_error(error, self.retry_after, self.query_timeout)
        if mapped is None:  # not one of the classes registered: never happens
            mapped = HTTPError(500)
        if mapped.status >= 500:
            log.error("%s %s answered %d: %s", req.method, req.path, mapped.status,
                      mapped.message)
        render_error(res, req, mapped.status, mapped.message, mapped.headers)

    def connection(self) -> _Lease:
        """``async with db.connection() as conn``: one connection for the block."""
        return _Lease(self)

    @asynccontextmanager
    async def transaction(self, **options: Any) -> AsyncIterator[Any]:
        """``async with db.transaction() as conn``: committed when the block ends, rolled back
        when it raises. ``options`` go to asyncpg's ``conn.transaction()`` (``isolation``,
        ``readonly``, ``deferrable``)."""
        async with self.connection() as conn:
            async with conn.transaction(**options):
                yield conn

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]:
        async with self.connection() as conn:
            return await conn.fetch(query, *args, timeout=timeout)

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        async with self.connection() as conn:
            return await conn.fetchrow(query, *args, timeout=timeout)

    async def fetchval(self, query: str, *args: Any, column: int = 0,
                       timeout: float | None = None) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(query, *args, column=column, timeout=timeout)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        async with self.connection() as conn:
            return await conn.execute(query, *args, timeout=timeout)

    async def executemany(self, query: str, args: Any, timeout: float | None = None) -> None:
        async with self.connection() as conn:
            await conn.executemany(query, args, timeout=timeout)

    # -- the pool ----------------------------------------------------------------------------

    async def _connect(self) -> Any:
        """A new connection; the caller has already counted it in ``_size``."""
        import asyncpg

        # With a watch, the connection passes query_timeout to asyncpg itself for every
        # statement the watch does not bound (postgres_connection.py).
        conn = await asyncpg.connect(
            self.dsn, connection_class=self._connection_class,
            timeout=self.acquire_timeout,
            command_timeout=self.query_timeout if self._watch is None else None,
            **self._connect_kwargs)
        if self._init is not None:
            try:
                await self._init(conn)
            except BaseException:
                conn.terminate()
                raise
        return conn

    def _statement_expired(self, conn: Any) -> None:
        """A kept statement ran past ``query_timeout`` (the watch's call): drop the connection,
        which makes the statement fail at once (a 503 for its request), and ask the server to
        cancel the query, which would otherwise run on."""
        pid = conn.get_server_pid()
        log.warning("a database statement ran longer than %g s: dropping its connection and "
                    "cancelling it on the server (backend %d)", self.query_timeout, pid)
        conn.terminate()
        task = asyncio.get_running_loop().create_task(self._cancel_backend(pid))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cancel_backend(self, pid: int) -> None:
        import asyncpg

        try:
            conn = await asyncpg.connect(self.dsn, timeout=self.acquire_timeout,
                                         **self._connect_kwargs)
            try:
                await conn.execute("SELECT pg_cancel_backend($1)", pid,
                                   timeout=self.acquire_timeout)
            finally:
                await conn.close(timeout=self.acquire_timeout)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as cancel_error:
            log.warning("could not cancel the statement of database backend %d: %r", pid,
                        cancel_error)

    def _take_idle(self) -> Any:
        """An idle connection, or None."""
        idle = self._idle
        while idle:
            conn = idle.pop()  # most recently used first: its caches are warm
            if not conn.is_closed():
                return conn
            self._size -= 1  # closed while idle (the server went away): forget it
        return None

    def _release_if_clean(self, conn: Any) -> bool:
        """Give back ``conn`` at once when it needs no reset; False when it does."""
        if conn.needs_reset or self.reset_always or conn.is_in_transaction():
            return False
        self._put_back(conn)
        return True

    async def acquire(self) -> Any:
        """A connection of the pool (prefer :meth:`connection`); give it back with
        :meth:`release`. Raises 503 errors as described in the module docstring."""
        conn = self._take_idle()
        if conn is not None:
            return conn
        if not self._open:
            raise ServiceUnavailable("the database pool is not open (app not started, or "
                                     "shutting down)")
        if self._size < self.max_size:
            return await self._new_connection()
        return await self._wait()

    async def _new_connection(self) -> Any:
        self._size += 1
        try:
            return await self._connect()
        except BaseException as exc:
            self._size -= 1
            self._slot_freed()
            mapped = _connection_error(exc, self.retry_after)
            if mapped is not None:
                raise mapped from exc
            raise

    async def _wait(self) -> Any:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(self.acquire_timeout, self._expire, waiter)
        try:
            conn = await waiter
        except asyncio.CancelledError:
            # Cancelled just after a connection was handed over: give it back.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()
                if handed is not None:
                    self._put_back(handed)
                else:
                    self._slot_freed()
            raise
        finally:
            timer.cancel()
        if conn is None:  # a connection was dropped: its slot is ours
            return await self._new_connection()
        return conn

    def _expire(self, waiter: asyncio.Future[Any]) -> None:
        if not waiter.done():
            waiter.set_exception(PoolTimeout(
                f"database busy: no free connection within {self.acquire_timeout:g} s "
                f"({self.max_size} in use)", _retry_after(self.retry_after)))

    def _hand_over(self, conn: Any) -> bool:
        """Give ``conn`` (or None: a free slot) to the first live waiter."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _slot_freed(self) -> None:
        self._hand_over(None)

    async def release(self, conn: Any) -> None:
        """Give back a connection taken with :meth:`acquire` (reset first if it needs it)."""
        if not self._release_if_clean(conn):
            await self._give_back(conn, None)

    def _put_back(self, conn: Any) -> None:
        """Return a clean connection (not in a transaction, no session state) to the pool."""
        if conn.is_closed():
            self._size -= 1
            self._slot_freed()
        elif not self._open:
            self._size -= 1
            conn.terminate()
        elif not self._hand_over(conn):
            self._idle.append(conn)
        if self._drained is not None:
            self._check_drained()

    def _check_drained(self) -> None:
        """While closing: wake :meth:`close` once every connection is back and none is awaited."""
        if self._drained is not None and not self._waiters and len(self._idle) >= self._size:
            self._drained.set()

    def _discard(self, conn: Any) -> None:
        """Drop a connection whose state is unknown (a timeout, a cancelled or broken query)."""
        if not conn.is_closed():
            conn.terminate()
        self._size -= 1
        self._slot_freed()
        self._check_drained()

    async def _reset_and_release(self, conn: Any) -> None:
        try:
            await conn.reset(timeout=self.acquire_timeout)
        except BaseException:
            self._discard(conn)
            raise
        conn.needs_reset = False
        self._put_back(conn)

    async def _reset_in_background(self, conn: Any) -> None:
        import asyncpg

        try:
            await self._reset_and_release(conn)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as reset_error:
            log.warning("dropped a database connection whose reset failed after an "
                        "interrupted statement: %r", reset_error)

    async def _give_back(self, conn: Any, exc: BaseException | None) -> None:
        """End a lease: release, reset or drop ``conn``; raise ``exc`` as an HTTP error."""
        import asyncpg

        if conn.is_closed():
            self._discard(conn)
            if isinstance(exc, asyncpg.InternalClientError):
                # asyncpg's report of a connection lost while a statement was being prepared
                # ("cannot switch to state ...; another operation is in progress"): the
                # database went away, not a bug of the app.
                raise ServiceUnavailable(f"database unavailable: the connection was lost "
                                         f"mid-statement ({exc})",
                                         _retry_after(self.retry_after)) from exc
        elif isinstance(exc, (asyncio.CancelledError, asyncio.TimeoutError)):
            # Interrupted mid-statement: asyncpg asks the server to cancel it, and the reset
            # waits for that before the connection is lent again. In the background, so that
            # the 503 (or the cancellation) is not held up by it. (Checked before OSError:
            # asyncio.TimeoutError is one since Python 3.11.)
            task = asyncio.get_running_loop().create_task(self._reset_in_background(conn))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif isinstance(exc, (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)):
            self._discard(conn)  # broken: what it holds is unknown
        elif conn.needs_reset or self.reset_always or conn.is_in_transaction():
            # Session state, or a transaction left open (or failed by ``exc``): reset.
            try:
                await self._reset_and_release(conn)
            except (OSError, asyncio.TimeoutError, asyncpg.PostgresError,
                    asyncpg.InterfaceError) as reset_error:
                if exc is None:
                    mapped = _connection_error(reset_error, self.retry_after)
                    if mapped is None:
                        raise
                    raise mapped from reset_error
                # The connection was dropped; the error of the block is the one to report.
                log.warning("dropped a database connection whose reset failed: %r",
                            reset_error)
        else:
            self._put_back(conn)
        if exc is not None:
            mapped = _query_error(exc, self.retry_after, self.query_timeout)
            if mapped is not None:
                raise mapped from exc


class _Lease:
    """``async with db.connection() as conn`` (no ``contextlib`` generator: this is on every
    request's path)."""

    __slots__ = ("_db", "_conn")

    def __init__(self, db: Postgres) -> None:
        self._db = db
        self._conn: Any = None

    # PERF: the common cases (an idle connection; a clean one given back) take no further
    # coroutine: acquire + release cost 2.7 µs over a held connection (4.6 before), asyncpg's
    # Pool about 30 µs (benchmarks/pool_cost.py).
    async def __aenter__(self) -> Any:
        conn = self._db._take_idle()
        if conn is None:
            conn = await self._db.acquire()
        self._conn = conn
        return conn

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        conn, self._conn = self._conn, None
        if exc is None and self._db._release_if_clean(conn):
            return
        await self._db._give_back(conn, exc)


def _mapped_error_classes() -> tuple[type[BaseException], ...]:
    """The asyncpg errors that :func:`_query_error` turns into an HTTP error."""
    import asyncpg

    return (asyncpg.UniqueViolationError, asyncpg.ExclusionViolationError,
            asyncpg.ForeignKeyViolationError, asyncpg.NotNullViolationError,
            asyncpg.CheckViolationError, asyncpg.QueryCanceledError,
            asyncpg.SerializationError, asyncpg.DeadlockDetectedError,
            asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError, asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError, asyncpg.InterfaceError)


def _connection_error(exc: BaseException, retry_after: int) -> HTTPError | None:
    """503 for a database that cannot be reached or refuses connections."""
    import asyncpg

    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError,
                        asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                        asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
                        asyncpg.InterfaceError)):
        reason = str(exc) or type(exc).__name__
        return ServiceUnavailable(f"database unavailable: {reason}",
                                  _retry_after(retry_after))
    return None


def _query_error(exc: BaseException, retry_after: int,
                 query_timeout: float | None) -> HTTPError | None:
    """The HTTP error to answer for a database error raised by a statement, or None."""
    import asyncpg

    if isinstance(exc, HTTPError):
        return None  # raised by the app inside the block: already an answer
    if isinstance(exc, (asyncpg.UniqueViolationError, asyncpg.ExclusionViolationError,
                        asyncpg.ForeignKeyViolationError)):
        return HTTPError(409, _constraint_message("conflict", exc))
    if isinstance(exc, (asyncpg.NotNullViolationError, asyncpg.CheckViolationError)):
        return UnprocessableContent(_constraint_message("invalid value", exc))
    if isinstance(exc, asyncio.TimeoutError):
        limit = f" after {query_timeout:g} s" if query_timeout else ""
        return ServiceUnavailable(f"database query timed out{limit}",
                                  _retry_after(retry_after))
    if isinstance(exc, asyncpg.QueryCanceledError):
        return ServiceUnavailable(f"database query cancelled: {exc}", _retry_after(retry_after))
    if isinstance(exc, (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)):
        return ServiceUnavailable(f"database conflict, retry: {exc}", _retry_after(retry_after))
    return _connection_error(exc, retry_after)


def _constraint_message(what: str, exc: Any) -> str:
    name = getattr(exc, "constraint_name", None)
    detail = getattr(exc, "detail", None)
    text = f"{what}: {exc}"
    if name:
        text += f" (constraint {name})"
    if detail:
        text += f": {detail}"
    return text
