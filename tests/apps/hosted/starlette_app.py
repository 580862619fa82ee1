"""A Starlette application: plaintext, JSON, a streamed request body, a streamed response,
a file (sent with http.response.pathsend), lifespan state, and a WebSocket echo."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

HERE = os.path.dirname(os.path.abspath(__file__))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
    yield {"greeting": "hello from lifespan"}


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


async def json(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, World!"})


async def info(request: Request) -> JSONResponse:
    client = request.client
    return JSONResponse({
        "path": request.url.path, "root_path": request.scope["root_path"],
        "query": dict(request.query_params), "client": list(client) if client else None,
        "scheme": request.url.scheme, "greeting": request.state.greeting,
        "http_version": request.scope["http_version"],
    })


async def echo(request: Request) -> PlainTextResponse:
    size = 0
    parts = 0
    async for chunk in request.stream():
        size += len(chunk)
        parts += bool(chunk)
    return PlainTextResponse(f"{size} bytes")


async def stream(request: Request) -> StreamingResponse:
    count = int(request.query_params.get("n", "3"))

    async def numbers() -> AsyncIterator[bytes]:
        for i in range(count):
            yield f"line {i}\n".encode()

    return StreamingResponse(numbers(), media_type="text/plain")


async def file(request: Request) -> FileResponse:
    return FileResponse(os.path.join(HERE, "static.txt"))


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("boom")


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol=websocket.scope["subprotocols"][0]
                           if websocket.scope["subprotocols"] else None)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            if message["text"] == "close":
                await websocket.close(code=4001, reason="asked to")
                return
            await websocket.send_text("echo: " + message["text"])
        else:
            await websocket.send_bytes(message["bytes"][::-1])


app = Starlette(routes=[
    Route("/plaintext", plaintext), Route("/json", json), Route("/info", info),
    Route("/echo", echo, methods=["POST"]), Route("/stream", stream), Route("/file", file),
    Route("/boom", boom), WebSocketRoute("/ws", ws_echo),
], lifespan=lifespan)
