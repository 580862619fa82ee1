"""PostgreSQL with asyncpg: a JSON API and an HTML page over one table of books.

``Postgres(app, dsn)`` opens a pool of asyncpg connections in each worker's
``on_start`` and closes it in ``on_shutdown``. Database errors answer themselves: a duplicate
title is a 409 naming the constraint, a database that is down or too slow a 503 with
``Retry-After``, a pool with no free connection a 503 after a bounded wait. Every answer written
after an ``await`` on the driver still leaves in one write.

Run it (a local PostgreSQL; the table is created on start):

    DATABASE_URL=postgresql://postgres@127.0.0.1/postgres python examples/postgres/app.py

    curl -X POST -d '{"title": "Dune", "author": "Frank Herbert", "year": 1965}' \\
         http://127.0.0.1:3000/api/books
    curl 'http://127.0.0.1:3000/api/books?limit=10&offset=0'
    curl -X PATCH -d '{"year": 1966}' http://127.0.0.1:3000/api/books/1
    curl -X DELETE http://127.0.0.1:3000/api/books/1
    open http://127.0.0.1:3000/
"""

import os

from corkweb import App, BadRequest, HTTPError, NotFound, Postgres

SCHEMA = """
CREATE TABLE IF NOT EXISTS book (
    id      bigserial PRIMARY KEY,
    title   text NOT NULL CONSTRAINT book_title_key UNIQUE,
    author  text NOT NULL,
    year    integer CHECK (year BETWEEN -3000 AND 3000),
    created timestamptz NOT NULL DEFAULT now()
)
"""
COLUMNS = "id, title, author, year, created"
FIELDS = {"title": str, "author": str, "year": int}
MAX_LIMIT = 100


def validate(payload, partial: bool = False) -> dict:
    """The book fields of a JSON body; 422 naming the first bad field."""
    if not isinstance(payload, dict):
        raise HTTPError(422, "send a JSON object with title, author and (optionally) year")
    unknown = sorted(set(payload) - set(FIELDS))
    if unknown:
        raise HTTPError(422, f"unknown field(s): {', '.join(unknown)}")
    book = {}
    for name, kind in FIELDS.items():
        if name not in payload:
            if not partial and name != "year":
                raise HTTPError(422, f"{name} is required")
            continue
        value = payload[name]
        if kind is str:
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise HTTPError(422, f"{name} must be a non-empty string of at most 200 "
                                     "characters")
            value = value.strip()
        elif value is not None and (type(value) is not int or not -3000 <= value <= 3000):
            raise HTTPError(422, "year must be an integer from -3000 to 3000, or null")
        book[name] = value
    if partial and not book:
        raise HTTPError(422, "nothing to update: send title, author or year")
    return book


def query_int(req, name: str, default: int, low: int, high: int) -> int:
    text = req.get_query(name, None)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}, got {text!r}")
    return int(text)


def create_app(dsn: str, **pool_options) -> App:
    app = App()
    db = Postgres(app, dsn, **pool_options)  # opened on start, closed on shutdown

    @app.on_start
    async def create_schema():
        # Several workers start at once: the transaction-level advisory lock makes them
        # create the table one after the other.
        async with db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(20)")
            await conn.execute(SCHEMA)

    @app.get("/api/books")
    async def list_books(res, req):
        limit = query_int(req, "limit", 20, 1, MAX_LIMIT)
        offset = query_int(req, "offset", 0, 0, 10**9)
        async with db.connection() as conn:
            rows = await conn.fetch(f"SELECT {COLUMNS} FROM book ORDER BY id LIMIT $1 OFFSET $2",
                                    limit, offset)
            total = await conn.fetchval("SELECT count(*) FROM book")
        res.end({"items": [dict(r) for r in rows], "total": total, "limit": limit,
                 "offset": offset})

    @app.get("/api/books/:id<int>")
    async def get_book(res, req):
        book_id = req.get_parameter("id")
        row = await db.fetchrow(f"SELECT {COLUMNS} FROM book WHERE id = $1", book_id)
        if row is None:
            raise NotFound(f"no book {book_id}")
        res.end(dict(row))

    @app.post("/api/books")
    async def create_book(res, req):
        book = validate(await res.get_json())
        row = await db.fetchrow(
            f"INSERT INTO book (title, author, year) VALUES ($1, $2, $3) RETURNING {COLUMNS}",
            book["title"], book["author"], book.get("year"))  # a taken title: 409
        res.write_status(201).write_header("location", f"/api/books/{row['id']}").end(dict(row))

    @app.patch("/api/books/:id<int>")
    @app.put("/api/books/:id<int>")
    async def update_book(res, req):
        book_id = req.get_parameter("id")
        book = validate(await res.get_json(), partial=req.get_method() == "PATCH")
        names = list(book)
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
        row = await db.fetchrow(
            f"UPDATE book SET {assignments} WHERE id = $1 RETURNING {COLUMNS}",
            book_id, *(book[name] for name in names))
        if row is None:
            raise NotFound(f"no book {book_id}")
        res.end(dict(row))

    @app.delete("/api/books/:id<int>")
    async def delete_book(res, req):
        book_id = req.get_parameter("id")
        status = await db.execute("DELETE FROM book WHERE id = $1", book_id)
        if status == "DELETE 0":
            raise NotFound(f"no book {book_id}")
        res.write_status(204).end()

    @app.get("/")
    async def shelf(res, req):
        async with db.connection() as conn:
            books = await conn.fetch(f"SELECT {COLUMNS} FROM book ORDER BY title LIMIT 100")
            authors = await conn.fetchval("SELECT count(DISTINCT author) FROM book")
        res.render("shelf.html", title="Bookshelf", books=books, authors=authors)

    @app.get("/health")
    async def health(res, req):
        await db.fetchval("SELECT 1")
        res.end({"database": "ok", "pool": {"size": db.size, "idle": db.idle}})

    return app


app = create_app(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"))

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
