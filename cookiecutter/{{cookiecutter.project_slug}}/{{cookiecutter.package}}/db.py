{%- if cookiecutter.database == "postgres" -%}
"""The notes table in PostgreSQL, through asyncpg.

``corkweb.Postgres`` opens a pool of connections in each worker when the app starts and closes
it when the app stops. Database errors answer themselves (a database that is down or too slow:
503 with Retry-After; a unique violation: 409). Each answer written after an ``await`` on the
database still leaves in one write.
"""

from __future__ import annotations

from corkweb import App, Postgres

SCHEMA = """
CREATE TABLE IF NOT EXISTS note (
    id      bigserial PRIMARY KEY,
    text    text NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
)
"""


class Notes:
    """The queries of the app, on a pool registered with the app's lifespan."""

    def __init__(self, app: App, database_url: str) -> None:
        self.db = Postgres(app, database_url, max_size=10, acquire_timeout=5)
        app.on_start(self.create_schema)  # after the pool opened: hooks run in order

    async def create_schema(self) -> None:
        # Workers start together: a transaction-level advisory lock lets one create the table.
        async with self.db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(1)")
            await conn.execute(SCHEMA)

    async def list(self, limit: int, offset: int) -> list[dict]:
        rows = await self.db.fetch(
            "SELECT id, text, created FROM note ORDER BY id LIMIT $1 OFFSET $2", limit, offset)
        return [dict(row) for row in rows]

    async def add(self, text: str) -> dict:
        row = await self.db.fetchrow(
            "INSERT INTO note (text) VALUES ($1) RETURNING id, text, created", text)
        return dict(row)

    async def get(self, note_id: int) -> dict | None:
        row = await self.db.fetchrow("SELECT id, text, created FROM note WHERE id = $1", note_id)
        return dict(row) if row is not None else None

    async def delete(self, note_id: int) -> bool:
        return await self.db.execute("DELETE FROM note WHERE id = $1", note_id) != "DELETE 0"
{%- else -%}
"""The notes table in SQLite, from the standard library.

``sqlite3`` blocks, so each query runs in a worker thread (``asyncio.to_thread``) while the
event loop serves other requests; the answer written after the ``await`` still leaves in one
write. The connection is opened when the app starts and closed when it stops.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from corkweb import App

SCHEMA = """
CREATE TABLE IF NOT EXISTS note (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (datetime('now'))
)
"""


class Notes:
    """The queries of the app, on one connection used under a lock."""

    def __init__(self, app: App, database_url: str) -> None:
        self.path = database_url
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        app.on_start(self.open)
        app.on_shutdown(self.close)

    def _open(self) -> None:
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        with self._conn:
            self._conn.execute(SCHEMA)

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    async def close(self) -> None:
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)
            self._conn = None

    def _run(self, sql: str, params: tuple, fetch: str):
        assert self._conn is not None, "the app has not started"
        with self._lock, self._conn:  # one statement at a time; commit on success
            cursor = self._conn.execute(sql, params)
            if fetch == "all":
                return [dict(row) for row in cursor.fetchall()]
            if fetch == "one":
                row = cursor.fetchone()
                return dict(row) if row is not None else None
            if fetch == "lastrowid":
                return cursor.lastrowid
            return cursor.rowcount

    async def list(self, limit: int, offset: int) -> list[dict]:
        return await asyncio.to_thread(
            self._run, "SELECT id, text, created FROM note ORDER BY id LIMIT ? OFFSET ?",
            (limit, offset), "all")

    async def add(self, text: str) -> dict:
        note_id = await asyncio.to_thread(
            self._run, "INSERT INTO note (text) VALUES (?)", (text,), "lastrowid")
        note = await self.get(note_id)
        assert note is not None
        return note

    async def get(self, note_id: int) -> dict | None:
        return await asyncio.to_thread(
            self._run, "SELECT id, text, created FROM note WHERE id = ?", (note_id,), "one")

    async def delete(self, note_id: int) -> bool:
        deleted = await asyncio.to_thread(
            self._run, "DELETE FROM note WHERE id = ?", (note_id,), "count")
        return deleted > 0
{%- endif %}
