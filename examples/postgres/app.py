"""PostgreSQL with asyncpg: a JSON API and an HTML page over one table of books.

``Postgres(app, dsn)`` opens a pool of asyncpg connections in each worker's
``on_start`` and closes it in ``on_shutdown``. The JSON API is typed handlers (msgspec Structs
validate the bodies and the query, 422 naming each bad field) that take their connection with
``Depends(db.session)``; the HTML page is a classic handler. Database errors answer
themselves: a duplicate title is a 409 naming the constraint, a database that is down or too
slow a 503 with ``Retry-After``, a pool with no free connection a 503 after a bounded wait.
Every answer written after an ``await`` on the driver still leaves in one write.

Run it (a local PostgreSQL; the table is created on start):

    DATABASE_URL=postgresql://postgres@127.0.0.1/postgres python examples/postgres/app.py

    curl -X POST -d '{"title": "Dune", "author": "Frank Herbert", "year": 1965}' \\
         http://127.0.0.1:3000/api/books
    curl 'http://127.0.0.1:3000/api/books?limit=10&offset=0'
    curl -X PATCH -d '{"year": 1966}' http://127.0.0.1:3000/api/books/1
    curl -X DELETE http://127.0.0.1:3000/api/books/1
    open http://127.0.0.1:3000/
"""

import datetime
import os
from typing import Annotated, Any

import msgspec

from corkweb import App, Depends, HTTPError, NotFound, Postgres, Response

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

# A name: at most 200 characters, at least one that is not a space (stripped before storing).
Name = Annotated[str, msgspec.Meta(max_length=200, pattern=r"\S")]
Year = Annotated[int, msgspec.Meta(ge=-3000, le=3000)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=10**9)]


class BookIn(msgspec.Struct, forbid_unknown_fields=True):
    """A book as created or replaced (POST, PUT)."""

    title: Name
    author: Name
    year: Year | None = None


class BookPatch(msgspec.Struct, forbid_unknown_fields=True):
    """The fields a PATCH changes: those it sends."""

    title: Name | msgspec.UnsetType = msgspec.UNSET
    author: Name | msgspec.UnsetType = msgspec.UNSET
    year: Year | None | msgspec.UnsetType = msgspec.UNSET


class Book(msgspec.Struct):
    id: int
    title: str
    author: str
    year: int | None
    created: datetime.datetime


class BookPage(msgspec.Struct):
    items: list[Book]
    total: int
    limit: int
    offset: int


def fields(book: BookIn | BookPatch) -> dict[str, Any]:
    """The fields a body sets, names stripped."""
    sent = {name: getattr(book, name) for name in book.__struct_fields__
            if getattr(book, name) is not msgspec.UNSET}
    return {name: value.strip() if isinstance(value, str) else value
            for name, value in sent.items()}


def create_app(dsn: str, **pool_options) -> App:
    app = App()
    db = Postgres(app, dsn, **pool_options)  # opened on start, closed on shutdown
    # ``conn=Depends(db.session)``: one connection for the request, given back (reset if it
    # needs it) once the answer has left; database errors answer themselves (409, 503...).
    Connection = Annotated[Any, Depends(db.session)]

    @app.on_start
    async def create_schema():
        # Several workers start at once: the transaction-level advisory lock makes them
        # create the table one after the other.
        async with db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(20)")
            await conn.execute(SCHEMA)

    @app.get("/api/books")
    async def list_books(conn: Connection, limit: Limit = 20, offset: Offset = 0) -> BookPage:
        rows = await conn.fetch(f"SELECT {COLUMNS} FROM book ORDER BY id LIMIT $1 OFFSET $2",
                                limit, offset)
        total = await conn.fetchval("SELECT count(*) FROM book")
        return BookPage(items=[Book(**row) for row in rows], total=total, limit=limit,
                        offset=offset)

    @app.get("/api/books/:book_id<int>")
    async def get_book(book_id: int, conn: Connection) -> Book:
        row = await conn.fetchrow(f"SELECT {COLUMNS} FROM book WHERE id = $1", book_id)
        if row is None:
            raise NotFound(f"no book {book_id}")
        return Book(**row)

    @app.post("/api/books", status=201)
    async def create_book(book: BookIn, conn: Connection, res: Response) -> Book:
        new = fields(book)
        row = await conn.fetchrow(
            f"INSERT INTO book (title, author, year) VALUES ($1, $2, $3) RETURNING {COLUMNS}",
            new["title"], new["author"], new["year"])  # a taken title: 409
        res.write_header("location", f"/api/books/{row['id']}")
        return Book(**row)

    async def update(book_id: int, changes: dict[str, Any], conn: Any) -> Book:
        if not changes:
            raise HTTPError(422, "nothing to update: send title, author or year")
        names = list(changes)
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
        row = await conn.fetchrow(
            f"UPDATE book SET {assignments} WHERE id = $1 RETURNING {COLUMNS}",
            book_id, *(changes[name] for name in names))  # a taken title: 409
        if row is None:
            raise NotFound(f"no book {book_id}")
        return Book(**row)

    @app.put("/api/books/:book_id<int>")
    async def replace_book(book_id: int, book: BookIn, conn: Connection) -> Book:
        return await update(book_id, fields(book), conn)

    @app.patch("/api/books/:book_id<int>")
    async def patch_book(book_id: int, book: BookPatch, conn: Connection) -> Book:
        return await update(book_id, fields(book), conn)

    @app.delete("/api/books/:book_id<int>", status=204)
    async def delete_book(book_id: int, conn: Connection) -> None:
        if await conn.execute("DELETE FROM book WHERE id = $1", book_id) == "DELETE 0":
            raise NotFound(f"no book {book_id}")

    # The HTML page stays a classic handler: it renders a template.
    @app.get("/")
    async def shelf(res, req):
        async with db.connection() as conn:
            books = await conn.fetch(f"SELECT {COLUMNS} FROM book ORDER BY title LIMIT 100")
            authors = await conn.fetchval("SELECT count(DISTINCT author) FROM book")
        res.render("shelf.html", title="Bookshelf", books=books, authors=authors)

    @app.get("/health")
    async def health(conn: Connection) -> dict:
        await conn.fetchval("SELECT 1")
        return {"database": "ok", "pool": {"size": db.size, "idle": db.idle}}

    return app


app = create_app(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"))

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
