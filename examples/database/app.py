"""Async database access: SQLite from the standard library, in a worker thread.

``sqlite3`` blocks, so every query runs in a thread through ``asyncio.to_thread`` while the
event loop keeps serving other connections. The handler awaits the result; the answer written
after the ``await`` still leaves in one write (every step of an async handler is corked).

Run it:  python examples/database/app.py        (DATABASE=notes.db to keep the data)

    curl -X POST -d '{"text": "buy cork"}' http://127.0.0.1:3000/notes
    curl http://127.0.0.1:3000/notes
"""

import asyncio
import os
import sqlite3
import threading

from corkweb import App, BadRequest, NotFound

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (datetime('now'))
)
"""


class Database:
    """One SQLite connection shared by the worker threads, used under a lock.

    An async driver (aiosqlite, asyncpg, ...) replaces this class without touching the
    handlers: they only ``await db.fetch_all(...)``.
    """

    def __init__(self, path: str):
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _open(self) -> None:
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        with self._conn:
            self._conn.execute(SCHEMA)

    def _run(self, sql: str, params: tuple, fetch: str):
        with self._lock, self._conn:  # one statement at a time; commit on success
            cursor = self._conn.execute(sql, params)
            if fetch == "all":
                return [dict(row) for row in cursor.fetchall()]
            if fetch == "one":
                row = cursor.fetchone()
                return dict(row) if row is not None else None
            return cursor.lastrowid

    async def connect(self) -> None:
        await asyncio.to_thread(self._open)

    async def close(self) -> None:
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)
            self._conn = None

    async def fetch_all(self, sql: str, *params):
        return await asyncio.to_thread(self._run, sql, params, "all")

    async def fetch_one(self, sql: str, *params):
        return await asyncio.to_thread(self._run, sql, params, "one")

    async def execute(self, sql: str, *params) -> int:
        """Run a statement; returns the id of the inserted row."""
        return await asyncio.to_thread(self._run, sql, params, "none")


def create_app(path: str = ":memory:") -> App:
    app = App(templates=None)
    db = Database(path)

    app.on_start(db.connect)  # once per worker, before it accepts connections
    app.on_shutdown(db.close)  # after the worker drained its connections

    @app.get("/notes")
    async def list_notes(res, req):
        limit = req.get_query("limit", "50")
        if not limit.isdigit():
            raise BadRequest("limit must be a positive integer")
        rows = await db.fetch_all("SELECT id, text, created FROM notes ORDER BY id LIMIT ?",
                                  int(limit))
        res.end(rows)

    @app.post("/notes")
    async def add_note(res, req):
        payload = await res.get_json()
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise BadRequest('send {"text": "..."} with a non-empty text')
        note_id = await db.execute("INSERT INTO notes (text) VALUES (?)", text.strip())
        note = await db.fetch_one("SELECT id, text, created FROM notes WHERE id = ?", note_id)
        res.write_status(201).end(note)

    @app.get("/notes/:id<int>")
    async def get_note(res, req):
        note = await db.fetch_one("SELECT id, text, created FROM notes WHERE id = ?",
                                  req.get_parameter("id"))
        if note is None:
            raise NotFound(f"no note {req.get_parameter('id')}")
        res.end(note)

    @app.delete("/notes/:id<int>")
    async def delete_note(res, req):
        await db.execute("DELETE FROM notes WHERE id = ?", req.get_parameter("id"))
        res.write_status(204).end()

    return app


app = create_app(os.environ.get("DATABASE", ":memory:"))

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
