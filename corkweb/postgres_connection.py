"""The connection class of ``corkweb.Postgres``: asyncpg's, plus what the pool needs to know.

* Which statements may leave state in the session (``SET``, ``LISTEN``, temporary tables...):
  the pool resets only a connection that ran one (``corkweb/postgres.py`` says why).
* Reads it has run before go through prepared statements kept on the connection.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["may_leave_session_state", "tracked_connection_class"]

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


def tracked_connection_class(reuse_statements: int) -> type:
    """An ``asyncpg.Connection`` that notes statements which may leave session state and, when
    ``reuse_statements`` > 0, runs the reads it has already seen through prepared statements
    it keeps (up to that many statement texts)."""
    import asyncpg

    base = asyncpg.Connection
    clean: set[str] = set()
    stale_statement = asyncpg.InvalidCachedStatementError

    class TrackedConnection(base):  # type: ignore[misc, valid-type]
        __slots__ = ("needs_reset", "statements")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.needs_reset = False
            # statement text -> asyncpg PreparedStatement, on this connection
            self.statements: dict[str, Any] = {}

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
            return base.execute(self, query, *args, timeout=timeout)

        def executemany(self, command: str, args: Any, **kwargs: Any) -> Any:
            if command not in clean:
                self._note(command)
            return base.executemany(self, command, args, **kwargs)

        # PERF: a read whose text was seen before on this connection runs its prepared
        # statement, skipping asyncpg's statement-cache lookup and the coroutines around it:
        # 59k instead of 66k instructions per one-row SELECT with the default query_timeout
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
            return base.fetch(self, query, *args, timeout=timeout, record_class=record_class)

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
            return base.fetchrow(self, query, *args, timeout=timeout,
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
            return base.fetchval(self, query, *args, column=column, timeout=timeout)

        def fetchmany(self, query: str, args: Any, **kwargs: Any) -> Any:
            if query not in clean:
                self._note(query)
            return base.fetchmany(self, query, args, **kwargs)

        def prepare(self, query: str, **kwargs: Any) -> Any:
            if query not in clean:
                self._note(query)
            return base.prepare(self, query, **kwargs)

        def cursor(self, query: str, *args: Any, **kwargs: Any) -> Any:
            if query not in clean:
                self._note(query)
            return base.cursor(self, query, *args, **kwargs)

        async def _prepare_and_run(self, method: str, query: str, args: tuple[Any, ...],
                                   timeout: float | None, column: int | None) -> Any:
            """First use of a clean statement text on this connection: prepare it (the round
            trip asyncpg's own cache would make too), keep it, run it."""
            statements = self.statements
            if len(statements) >= reuse_statements:
                # Full: a text the app builds on the fly (say, an IN list of varying length)
                # must not fill the server with statements. asyncpg's own LRU cache runs it.
                return await getattr(base, method)(self, query, *args, timeout=timeout,
                                                   **({} if column is None else
                                                      {"column": column}))
            stmt = await base.prepare(self, query, timeout=timeout)
            statements[query] = stmt
            return await self._prepared(stmt, method, query, args, timeout, column)

        async def _prepared(self, stmt: Any, method: str, query: str, args: tuple[Any, ...],
                            timeout: float | None, column: int | None) -> Any:
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
            kwargs = {} if column is None else {"column": column}
            return await getattr(base, method)(self, query, *args, timeout=timeout, **kwargs)

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
