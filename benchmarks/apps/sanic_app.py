"""Sanic (single process, no access log) serving the benchmark workloads.

Sanic's Jinja2 integration lives in the separate sanic-ext package, so jinja2 is used
directly, with an Environment built once. Run from the repository root:
``python -m benchmarks.apps.sanic_app PORT``.
"""
from __future__ import annotations

import jinja2
from sanic import Request, Sanic, Websocket
from sanic.response import HTTPResponse, html, json, text

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

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=jinja2.select_autoescape()
)
app = Sanic("corkweb_bench")


@app.get("/plaintext")
async def plaintext(request: Request) -> HTTPResponse:
    return text(PLAINTEXT)


@app.get("/json")
async def json_(request: Request) -> HTTPResponse:
    return json(MESSAGE)


@app.get("/user/<id>")
async def user(request: Request, id: str) -> HTTPResponse:
    return text("User " + id)


@app.get("/page")
async def page(request: Request) -> HTTPResponse:
    return html(env.get_template(TEMPLATE).render(rows=ROWS, title=TITLE))


@app.post("/upload")
async def upload(request: Request) -> HTTPResponse:
    return text(str(len(request.body)))  # Sanic reads the whole body before the handler


@app.websocket("/ws")
async def echo(request: Request, ws: Websocket) -> None:
    async for message in ws:
        await ws.send(message)


if db.DATABASE_URL:  # the TechEmpower database types (benchmarks/database.py)
    import asyncpg

    @app.before_server_start
    async def open_pool(app, loop):
        app.ctx.pool = await asyncpg.create_pool(db.DATABASE_URL, min_size=db.POOL_SIZE,
                                                 max_size=db.POOL_SIZE)

    @app.after_server_stop
    async def close_pool(app, loop):
        await app.ctx.pool.close()

    @app.get("/db")
    async def single_query(request: Request) -> HTTPResponse:
        row_id = db.random_id()
        async with request.app.ctx.pool.acquire() as conn:
            number = await conn.fetchval(db.READ_ROW, row_id)
        return json({"id": row_id, "randomNumber": number})

    @app.get("/queries")
    async def queries(request: Request) -> HTTPResponse:
        ids = [db.random_id() for _ in range(db.query_count(request.args.get("queries")))]
        async with request.app.ctx.pool.acquire() as conn:
            worlds = [{"id": i, "randomNumber": await conn.fetchval(db.READ_ROW, i)}
                      for i in ids]
        return json(worlds)

    @app.get("/fortunes")
    async def fortunes(request: Request) -> HTTPResponse:
        async with request.app.ctx.pool.acquire() as conn:
            rows = await conn.fetch(db.READ_FORTUNES)
        return html(env.get_template(db.FORTUNES_TEMPLATE).render(
            fortunes=db.sorted_fortunes(rows)))

    @app.get("/updates")
    async def updates(request: Request) -> HTTPResponse:
        ids = sorted(db.random_ids(db.query_count(request.args.get("queries"))))
        async with request.app.ctx.pool.acquire() as conn:
            worlds = await db.update_worlds(conn, ids)
        return json(worlds)


app.static("/static", static_dir())

if __name__ == "__main__":
    app.run(host=HOST, port=port(), single_process=True, access_log=False, motd=False)
