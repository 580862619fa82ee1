"""The hosted-app benchmark's applications: the same two routes as a raw ASGI app, a
Starlette app and a FastAPI app (``benchmarks/hosted.py`` serves each on corkweb, uvicorn
and Granian).

``GET /plaintext`` answers ``Hello, World!`` as text/plain, ``GET /json`` the JSON message.
"""
from __future__ import annotations

import json as _json

from benchmarks.apps.common import MESSAGE, PLAINTEXT

_PLAIN = PLAINTEXT.encode()
_JSON = _json.dumps(MESSAGE, separators=(",", ":")).encode()
_PLAIN_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(_PLAIN))]
_JSON_HEADERS = [(b"content-type", b"application/json"),
                 (b"content-length", b"%d" % len(_JSON))]
_NOT_FOUND = [(b"content-type", b"text/plain"), (b"content-length", b"9")]


async def raw(scope, receive, send):
    """A minimal ASGI 3 application: what a server costs when the app costs nearly nothing."""
    if scope["type"] != "http":
        return  # no lifespan
    path = scope["path"]
    if path == "/plaintext":
        await send({"type": "http.response.start", "status": 200, "headers": _PLAIN_HEADERS})
        await send({"type": "http.response.body", "body": _PLAIN})
    elif path == "/json":
        await send({"type": "http.response.start", "status": 200, "headers": _JSON_HEADERS})
        await send({"type": "http.response.body", "body": _JSON})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": _NOT_FOUND})
        await send({"type": "http.response.body", "body": b"not found"})


def _starlette():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def plaintext(request):
        return PlainTextResponse(PLAINTEXT)

    async def json(request):
        return JSONResponse(MESSAGE)

    return Starlette(routes=[Route("/plaintext", plaintext), Route("/json", json)])


def _fastapi():
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()

    @app.get("/plaintext", response_class=PlainTextResponse)
    async def plaintext():
        return PLAINTEXT

    @app.get("/json")
    async def json():
        return MESSAGE

    return app


def __getattr__(name: str):
    # Each server process builds only the app it serves (and imports only its framework).
    if name == "starlette":
        return _starlette()
    if name == "fastapi":
        return _fastapi()
    raise AttributeError(name)
