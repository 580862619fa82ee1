"""socketify.py serving the benchmark workloads (uWebSockets in C++ under CFFI).

socketify has no Jinja2 integration of its own: ``app.template`` takes any object with a
``render(name, **kw)`` method, so an Environment built once is wrapped here.
Run from the repository root: ``python -m benchmarks.apps.socketify_app PORT``.
"""
from __future__ import annotations

import jinja2
from socketify import App, AppListenOptions

from benchmarks.apps import db
from benchmarks.apps.common import (
    HOST,
    MESSAGE,
    PLAINTEXT,
    ROWS,
    TEMPLATE,
    TEMPLATES_DIR,
    TITLE,
    port,
    static_dir,
)


class Jinja2Template:
    """The engine object that ``res.render`` calls."""

    def __init__(self, directory: str) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=jinja2.select_autoescape(),
        )

    def render(self, name: str, **context) -> str:
        return self.env.get_template(name).render(**context)


def plaintext(res, req):
    res.write_header("Content-Type", "text/plain").end(PLAINTEXT)


def json_(res, req):
    res.end(MESSAGE)


def user(res, req):
    res.write_header("Content-Type", "text/plain").end("User " + req.get_parameter(0))


def page(res, req):
    res.render(TEMPLATE, rows=ROWS, title=TITLE)


async def upload(res, req):
    body = await res.get_data()  # a BytesIO
    res.write_header("Content-Type", "text/plain")
    res.end(str(body.getbuffer().nbytes))


def add_database_routes(app: App) -> None:
    """The TechEmpower database types (benchmarks/database.py). Anything read from ``req``
    is read before the first ``await`` (``req`` is not valid after it in socketify), and
    answers after an ``await`` go through ``cork_end``, socketify's corked answer."""
    import asyncpg

    state = {}

    @app.on_start
    async def open_pool():
        state["pool"] = await asyncpg.create_pool(db.DATABASE_URL, min_size=db.POOL_SIZE,
                                                  max_size=db.POOL_SIZE)

    @app.on_shutdown
    async def close_pool():
        await state["pool"].close()

    async def single_query(res, req):
        row_id = db.random_id()
        async with state["pool"].acquire() as conn:
            number = await conn.fetchval(db.READ_ROW, row_id)
        res.cork_end({"id": row_id, "randomNumber": number})

    async def queries(res, req):
        ids = [db.random_id() for _ in range(db.query_count(req.get_query("queries")))]
        async with state["pool"].acquire() as conn:
            worlds = [{"id": i, "randomNumber": await conn.fetchval(db.READ_ROW, i)}
                      for i in ids]
        res.cork_end(worlds)

    async def fortunes(res, req):
        async with state["pool"].acquire() as conn:
            rows = await conn.fetch(db.READ_FORTUNES)
        html = app._template.render(db.FORTUNES_TEMPLATE, fortunes=db.sorted_fortunes(rows))
        res.cork(lambda res: res.write_header("Content-Type", "text/html; charset=utf-8")
                 .end(html))

    async def updates(res, req):
        ids = sorted(db.random_ids(db.query_count(req.get_query("queries"))))
        async with state["pool"].acquire() as conn:
            worlds = await db.update_worlds(conn, ids)
        res.cork_end(worlds)

    app.get("/db", single_query)
    app.get("/queries", queries)
    app.get("/fortunes", fortunes)
    app.get("/updates", updates)


def main() -> None:
    app = App()
    app.template(Jinja2Template(TEMPLATES_DIR))
    app.get("/plaintext", plaintext)
    app.get("/json", json_)
    app.get("/user/:id", user)
    app.get("/page", page)
    app.post("/upload", upload)
    app.static("/static", static_dir())
    if db.DATABASE_URL:
        add_database_routes(app)
    app.ws("/ws", {"message": lambda ws, msg, opcode: ws.send(msg, opcode)})
    # pub/sub fan-out (benchmarks/fanout.py)
    app.ws("/sub", {"open": lambda ws: ws.subscribe("fanout")})
    app.ws("/pub", {"message": lambda ws, msg, opcode: app.publish("fanout", msg, opcode)})
    app.listen(AppListenOptions(port=port(), host=HOST))
    app.run()


if __name__ == "__main__":
    main()
