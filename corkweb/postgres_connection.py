"""The connection class of ``corkweb.Postgres``: asyncpg's, plus what the pool needs to know.

* Which statements may leave state in the session (``SET``, ``LISTEN``, temporary tables...):
  the pool resets only a connection that ran one (``corkweb/postgres.py`` says why).
* Reads it has run before go through prepared statements kept on the connection, bounded in
  time by a :class:`StatementWatch` rather than a timer per statement.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

__all__ = ["StatementWatch", "may_leave_session_state", "tracked_connection_class"]

log = logging.getLogger("corkweb.postgres")

# A statement starting with one of these (at the start of the text or after a ``;``, after
# comments) can change the session beyond the current transaction. ``SET LOCAL``,
# ``SET TRANSACTION`` and ``SET CONSTRAINTS`` end with the transaction.
_STATEFUL_START = re.compile(
    r"(?:^|;)\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*"
    r"(?:SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)|RESET\b|LISTEN\b|DECLARE\b|PREPARE\b"
    r"|DEALLOCATE\b"
    r"|LOAD\b|DISCARD\b|DO\b|CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?TEMP(?:ORARY)?\b)",
    re.IGNORECASE | re.DOTALL,
)
# Anywhere in a statement: functions with a session-wide effect (the ``_xact_`` advisory
# locks end with the transaction and do not match).
_STATEFUL_CALL = re.compile(
    r"\b(?:set_config|pg_(?:try_)?advisory_lock(?:_shared)?|dblink_connect(?:_u)?)\s*\(",
    re.IGNORECASE,
)
_CLEAN_CACHE_MAX = 4096


def may_leave_session_state(query: str) -> bool:
    """Whether ``query`` may change its session beyond the current transaction."""
    return bool(_STATEFUL_START.search(query) or _STATEFUL_CALL.search(query))


class StatementWatch:
    """Bounds the statements run through kept prepared statements to ``timeout`` seconds
    without a timer per statement.

    asyncpg's own bound (``command_timeout``) arms a timer for every statement and cancels it
    when the answer comes: about 6k instructions, a tenth of a one-row read. Here a statement
    notes the watch's tick when it starts (an attribute store) and one timer per pool ticks
    every ``timeout / 4``: a statement still running five ticks after it started has run
    between ``timeout`` and ``1.25 * timeout``, and ``expired(conn)`` ends it (the pool drops
    the connection and asks the server to cancel the query).
    """

    __slots__ = ("timeout", "tick", "connections", "_expired", "_handle")

    def __init__(self, timeout: float, expired: Callable[[Any], None]) -> None:
        self.timeout = timeout
        self.tick = 0
        self.connections: set[Any] = set()  # closed ones are dropped at the next tick
        self._expired = expired
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.timeout / 4, self._check)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.connections.clear()  # the pool is closed: hold none of them any longer

    def _check(self) -> None:
        self.tick = tick = self.tick + 1
        for conn in list(self.connections):
            if conn.is_closed():
                self.connections.discard(conn)
            elif conn.running_since is not None and tick - conn.running_since >= 5:
                conn.running_since = None
                conn.timed_out = True
                try:
                    self._expired(conn)
                except Exception:  # the watch must keep ticking for the other connections
                    log.exception("ending a database statement that ran too long failed")
        self._handle = asyncio.get_running_loop().call_later(self.timeout / 4, self._check)


def tracked_connection_class(reuse_statements: int, watch: StatementWatch | None) -> type:
    """An ``asyncpg.Connection`` that notes statements which may leave session state and, when
    ``reuse_statements`` > 0, runs the reads it has already seen through prepared statements
    it keeps (up to that many statement texts). With a ``watch``, the connection is opened
    without asyncpg's ``command_timeout``: the kept statements are bounded by the watch, every
    other statement gets ``watch.timeout`` as its explicit timeout."""
    import asyncpg

    base = asyncpg.Connection
    clean: set[str] = set()
    stale_statement = asyncpg.InvalidCachedStatementError
    lost = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)
    default = watch.timeout if watch is not None else None

    class TrackedConnection(base):  # type: ignore[misc, valid-type]
        __slots__ = ("needs_reset", "statements", "running_since", "timed_out")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.needs_reset = False
            # statement text -> asyncpg PreparedStatement, on this connection
            self.statements: dict[str, Any] = {}
            self.running_since: int | None = None  # the watch's tick, while a statement runs
            self.timed_out = False
            if watch is not None:
                watch.connections.add(self)

        def _note(self, query: str) -> None:
            if may_leave_session_state(query):
                self.needs_reset = True
                # DISCARD, DEALLOCATE, SET search_path...: what was prepared may be gone
                # or may now mean something else; prepare again after the reset.
                self.statements.clear()
            elif len(clean) < _CLEAN_CACHE_MAX:
                clean.add(query)

        # PERF: plain functions returning a coroutine (no extra frame where none is needed);
        # the check is one set lookup for a statement text already seen (~0.1 µs).
        def execute(self, query: str, *args: Any, timeout: float | None = None) -> Any:
            if query not in clean:
                self._note(query)
            if args:
                stmt = self.statements.get(query)
                if stmt is not None:
                    return self._prepared(stmt, "execute", query, args, timeout, None)
                if reuse_statements and query in clean:
                    return self._prepare_and_run("execute", query, args, timeout, None)
            return base.execute(self, query, *args,
                                timeout=default if timeout is None else timeout)

        def executemany(self, command: str, args: Any, *,
                        timeout: float | None = None) -> Any:
            if command not in clean:
                self._note(command)
            return base.executemany(self, command, args,
                                    timeout=default if timeout is None else timeout)

        # PERF: a read whose text was seen before on this connection runs its prepared
        # statement, skipping asyncpg's statement-cache lookup and the coroutines around it,
        # bounded by the watch instead of a timer per statement: 53k instructions per one-row
        # SELECT where asyncpg's path with command_timeout takes 63k and this class took 66k
        # (callgrind, a held connection); the kept statements cost server memory, bounded.
        def fetch(self, query: str, *args: Any, timeout: float | None = None,
                  record_class: Any = None) -> Any:
            if query not in clean:
                self._note(query)
            if record_class is None:
                stmt = self.statements.get(query)
                if stmt is not None:
                    return self._prepared(stmt, "fetch", query, args, timeout, None)
                if reuse_statements and query in clean:
                    return self._prepare_and_run("fetch", query, args, timeout, None)
            return base.fetch(self, query, *args, timeout=default if timeout is None else timeout,
                              record_class=record_class)

        def fetchrow(self, query: str, *args: Any, timeout: float | None = None,
                     record_class: Any = None) -> Any:
            if query not in clean:
                self._note(query)
            if record_class is None:
                stmt = self.statements.get(query)
                if stmt is not None:
                    return self._prepared(stmt, "fetchrow", query, args, timeout, None)
                if reuse_statements and query in clean:
                    return self._prepare_and_run("fetchrow", query, args, timeout, None)
            return base.fetchrow(self, query, *args,
                                 timeout=default if timeout is None else timeout,
                                 record_class=record_class)

        def fetchval(self, query: str, *args: Any, column: int = 0,
                     timeout: float | None = None) -> Any:
            if query not in clean:
                self._note(query)
            stmt = self.statements.get(query)
            if stmt is not None:
                return self._prepared(stmt, "fetchval", query, args, timeout, column)
            if reuse_statements and query in clean:
                return self._prepare_and_run("fetchval", query, args, timeout, column)
            return base.fetchval(self, query, *args, column=column,
                                 timeout=default if timeout is None else timeout)

        def fetchmany(self, query: str, args: Any, *, timeout: float | None = None,
                      record_class: Any = None) -> Any:
            if query not in clean:
                self._note(query)
            return base.fetchmany(self, query, args,
                                  timeout=default if timeout is None else timeout,
                                  record_class=record_class)

        def prepare(self, query: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
            # The statement returned runs without a default timeout when a watch bounds this
            # pool's statements: pass ``timeout=`` to its calls (docs/databases.md).
            if query not in clean:
                self._note(query)
            return base.prepare(self, query, timeout=default if timeout is None else timeout,
                                **kwargs)

        def cursor(self, query: str, *args: Any, timeout: float | None = None,
                   **kwargs: Any) -> Any:
            if query not in clean:
                self._note(query)
            return base.cursor(self, query, *args,
                               timeout=default if timeout is None else timeout, **kwargs)

        # COPY has no statement text to check; it only needs the default timeout.
        def copy_from_table(self, *args: Any, timeout: float | None = None,
                            **kwargs: Any) -> Any:
            return base.copy_from_table(self, *args,
                                        timeout=default if timeout is None else timeout,
                                        **kwargs)

        def copy_from_query(self, *args: Any, timeout: float | None = None,
                            **kwargs: Any) -> Any:
            return base.copy_from_query(self, *args,
                                        timeout=default if timeout is None else timeout,
                                        **kwargs)

        def copy_to_table(self, *args: Any, timeout: float | None = None,
                          **kwargs: Any) -> Any:
            return base.copy_to_table(self, *args,
                                      timeout=default if timeout is None else timeout,
                                      **kwargs)

        def copy_records_to_table(self, *args: Any, timeout: float | None = None,
                                  **kwargs: Any) -> Any:
            return base.copy_records_to_table(self, *args,
                                              timeout=default if timeout is None else timeout,
                                              **kwargs)

        async def _prepare_and_run(self, method: str, query: str, args: tuple[Any, ...],
                                   timeout: float | None, column: int | None) -> Any:
            """First use of a clean statement text on this connection: prepare it (the round
            trip asyncpg's own cache would make too), keep it, run it."""
            statements = self.statements
            if len(statements) >= reuse_statements:
                # Full: a text the app builds on the fly (say, an IN list of varying length)
                # must not fill the server with statements. asyncpg's own LRU cache runs it.
                return await getattr(base, method)(
                    self, query, *args, timeout=default if timeout is None else timeout,
                    **({} if column is None else {"column": column}))
            stmt = await base.prepare(self, query,
                                      timeout=default if timeout is None else timeout)
            statements[query] = stmt
            return await self._prepared(stmt, method, query, args, timeout, column)

        async def _prepared(self, stmt: Any, method: str, query: str, args: tuple[Any, ...],
                            timeout: float | None, column: int | None) -> Any:
            if watch is not None and timeout is None:
                self.running_since = watch.tick  # the watch bounds it: no timer of asyncpg's
            try:
                # PERF: no keyword arguments when they are the defaults: asyncpg's method
                # wrapper would pack and unpack them (~1k instructions per query).
                if method == "fetchval":
                    if column or timeout is not None:
                        return await stmt.fetchval(*args, column=column, timeout=timeout)
                    return await stmt.fetchval(*args)
                if timeout is not None:
                    if method == "execute":
                        await stmt.fetch(*args, timeout=timeout)
                        return stmt.get_statusmsg()
                    return await getattr(stmt, method)(*args, timeout=timeout)
                if method == "fetch":
                    return await stmt.fetch(*args)
                if method == "fetchrow":
                    return await stmt.fetchrow(*args)
                await stmt.fetch(*args)
                return stmt.get_statusmsg()
            except stale_statement:
                # The schema changed under the statement (ALTER TABLE, a new search_path).
                # asyncpg's own path prepares it again and retries once outside a
                # transaction (inside one, the transaction has failed): do the same.
                self.statements.pop(query, None)
                if self.is_in_transaction():
                    raise
            except lost as exc:
                if self.timed_out:  # the watch ended it: the connection was dropped
                    raise asyncio.TimeoutError(
                        f"the statement ran longer than {default:g} s") from exc
                raise
            finally:
                self.running_since = None
            kwargs = {} if column is None else {"column": column}
            return await getattr(base, method)(
                self, query, *args, timeout=default if timeout is None else timeout, **kwargs)

        # asyncpg drops its own statements when codecs or the schema it knows change; the
        # prepared statements kept here carry the old codecs: drop them too.
        async def set_type_codec(self, *args: Any, **kwargs: Any) -> None:
            self.statements.clear()
            await base.set_type_codec(self, *args, **kwargs)

        async def reset_type_codec(self, *args: Any, **kwargs: Any) -> None:
            self.statements.clear()
            await base.reset_type_codec(self, *args, **kwargs)

        async def set_builtin_type_codec(self, *args: Any, **kwargs: Any) -> None:
            self.statements.clear()
            await base.set_builtin_type_codec(self, *args, **kwargs)

        async def reload_schema_state(self) -> None:
            self.statements.clear()
            await base.reload_schema_state(self)

        async def reset(self, *, timeout: float | None = None) -> None:
            # the session's settings (search_path...) go back to their defaults
            self.statements.clear()
            await base.reset(self, timeout=timeout)

    return TrackedConnection
