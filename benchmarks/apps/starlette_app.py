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


app = Starlette(
    routes=[
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
