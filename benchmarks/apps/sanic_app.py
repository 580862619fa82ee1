"""Sanic (single process, no access log) serving the benchmark workloads.

Sanic's Jinja2 integration lives in the separate sanic-ext package, so jinja2 is used
directly, with an Environment built once. Run from the repository root:
``python -m benchmarks.apps.sanic_app PORT``.
"""
from __future__ import annotations

import jinja2
from sanic import Request, Sanic, Websocket
from sanic.response import HTTPResponse, html, json, text

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


app.static("/static", static_dir())

if __name__ == "__main__":
    app.run(host=HOST, port=port(), single_process=True, access_log=False, motd=False)
