"""Starlette on uvicorn (httptools, uvloop, no access log) serving the workloads.

The page goes through Starlette's own ``Jinja2Templates``; WebSockets use uvicorn's
default implementation (the ``websockets`` package when it is installed).
Run from the repository root: ``python -m benchmarks.apps.starlette_app PORT``.
"""
from __future__ import annotations

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.websockets import WebSocket, WebSocketDisconnect

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

templates = Jinja2Templates(directory=TEMPLATES_DIR)


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse(PLAINTEXT)


async def json_(request: Request) -> JSONResponse:
    return JSONResponse(MESSAGE)


async def user(request: Request) -> PlainTextResponse:
    return PlainTextResponse("User " + request.path_params["id"])


async def page(request: Request):
    return templates.TemplateResponse(request, TEMPLATE, {"rows": ROWS, "title": TITLE})


async def upload(request: Request) -> PlainTextResponse:
    body = await request.body()
    return PlainTextResponse(str(len(body)))


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


routes = []
lifespan = None
if db.DATABASE_URL:  # the TechEmpower database types (benchmarks/database.py)
    from contextlib import asynccontextmanager

    import asyncpg

    pool = None

    @asynccontextmanager
    async def lifespan(app):
        global pool
        pool = await asyncpg.create_pool(db.DATABASE_URL, min_size=db.POOL_SIZE,
                                         max_size=db.POOL_SIZE)
        yield
        await pool.close()

    async def single_query(request: Request) -> JSONResponse:
        row_id = db.random_id()
        async with pool.acquire() as conn:
            number = await conn.fetchval(db.READ_ROW, row_id)
        return JSONResponse({"id": row_id, "randomNumber": number})

    async def queries(request: Request) -> JSONResponse:
        ids = [db.random_id() for _ in range(db.query_count(request.query_params.get("queries")))]
        async with pool.acquire() as conn:
            worlds = [{"id": i, "randomNumber": await conn.fetchval(db.READ_ROW, i)}
                      for i in ids]
        return JSONResponse(worlds)

    async def fortunes(request: Request):
        async with pool.acquire() as conn:
            rows = await conn.fetch(db.READ_FORTUNES)
        return templates.TemplateResponse(request, db.FORTUNES_TEMPLATE,
                                          {"fortunes": db.sorted_fortunes(rows)})

    async def updates(request: Request) -> JSONResponse:
        ids = sorted(db.random_ids(db.query_count(request.query_params.get("queries"))))
        async with pool.acquire() as conn:
            worlds = await db.update_worlds(conn, ids)
        return JSONResponse(worlds)

    routes = [Route("/db", single_query), Route("/queries", queries),
              Route("/fortunes", fortunes), Route("/updates", updates)]

app = Starlette(
    lifespan=lifespan,
    routes=[*routes,
        Route("/plaintext", plaintext),
        Route("/json", json_),
        Route("/user/{id}", user),
        Route("/page", page),
        Route("/upload", upload, methods=["POST"]),
        WebSocketRoute("/ws", echo),
        Mount("/static", StaticFiles(directory=static_dir())),
    ]
)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host=HOST,
        port=port(),
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
    )
