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
