"""BlackSheep on Granian (ASGI, 1 worker, 1 runtime thread, uvloop) serving workloads.

The page goes through BlackSheep's own Jinja2 renderer (``view``). Granian imports this
module in its worker process. Run from the repository root:
``python -m benchmarks.apps.blacksheep_app PORT``.
"""
from __future__ import annotations

import os

# BlackSheep's Jinja2 renderer appends this extension to template names (".jinja" by
# default) and reads it when first imported, so it is set before that.
os.environ.setdefault("APP_JINJA_EXTENSION", ".html")

from blacksheep import Application, Request, WebSocket, WebSocketDisconnectError, text
from blacksheep.server.rendering.jinja2 import JinjaRenderer
from blacksheep.server.responses import json, view
from blacksheep.server.routing import Router
from blacksheep.settings.html import html_settings
from jinja2 import FileSystemLoader

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

# The app gets a router of its own, not BlackSheep's module-level default: Granian's
# worker imports this module twice (as __mp_main__ and by name), which would register
# every route twice on a shared router.
app = Application(router=Router())
html_settings.use(JinjaRenderer(loader=FileSystemLoader(TEMPLATES_DIR)))


@app.router.get("/plaintext")
async def plaintext():
    return text(PLAINTEXT)


@app.router.get("/json")
async def json_():
    return json(MESSAGE)


@app.router.get("/user/:id")
async def user(id: str):
    return text("User " + id)


@app.router.get("/page")
async def page():
    return view(TEMPLATE, rows=ROWS, title=TITLE)


@app.router.post("/upload")
async def upload(request: Request):
    body = await request.read()
    return text(str(len(body or b"")))


@app.router.ws("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnectError:
        pass


if db.DATABASE_URL:  # the TechEmpower database types (benchmarks/database.py)
    import asyncpg

    async def open_pool(application: Application) -> None:
        application.services.register(asyncpg.Pool, instance=await asyncpg.create_pool(
            db.DATABASE_URL, min_size=db.POOL_SIZE, max_size=db.POOL_SIZE))

    async def close_pool(application: Application) -> None:
        await application.services.resolve(asyncpg.Pool).close()

    app.on_start += open_pool
    app.on_stop += close_pool

    @app.router.get("/db")
    async def single_query(pool: asyncpg.Pool):
        row_id = db.random_id()
        async with pool.acquire() as conn:
            number = await conn.fetchval(db.READ_ROW, row_id)
        return json({"id": row_id, "randomNumber": number})

    @app.router.get("/queries")
    async def queries(request: Request, pool: asyncpg.Pool):
        ids = [db.random_id() for _ in range(db.query_count(request.query.get("queries",
                                                                              [None])[0]))]
        async with pool.acquire() as conn:
            worlds = [{"id": i, "randomNumber": await conn.fetchval(db.READ_ROW, i)}
                      for i in ids]
        return json(worlds)

    @app.router.get("/fortunes")
    async def fortunes(pool: asyncpg.Pool):
        async with pool.acquire() as conn:
            rows = await conn.fetch(db.READ_FORTUNES)
        return view(db.FORTUNES_TEMPLATE.removesuffix(".html"),
                    fortunes=db.sorted_fortunes(rows))

    @app.router.get("/updates")
    async def updates(request: Request, pool: asyncpg.Pool):
        ids = sorted(db.random_ids(db.query_count(request.query.get("queries", [None])[0])))
        async with pool.acquire() as conn:
            worlds = await db.update_worlds(conn, ids)
        return json(worlds)


app.serve_files(static_dir(), root_path="static", extensions={".bin"})

if __name__ == "__main__":
    from granian import Granian

    Granian(
        "benchmarks.apps.blacksheep_app:app",
        address=HOST,
        port=port(),
        interface="asgi",
        workers=1,
        runtime_threads=1,
        loop="uvloop",
        log_access=False,
        log_level="warning",
    ).serve()
