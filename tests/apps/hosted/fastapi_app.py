"""A FastAPI application: typed routes, a pydantic body, lifespan state, a WebSocket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    price: float


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
    yield {"items": {}, "started": True}


app = FastAPI(lifespan=lifespan)


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> str:
    return "Hello, World!"


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.post("/items/{item_id}", status_code=201)
async def create(item_id: int, item: Item, request: Request) -> dict[str, object]:
    request.state.items[item_id] = item
    return {"id": item_id, "name": item.name, "price": item.price}


@app.get("/items/{item_id}")
async def read(item_id: int, request: Request) -> Item:
    return request.state.items[item_id]


@app.get("/sync")
def sync_route() -> dict[str, str]:
    return {"ran": "in a thread"}


@app.websocket("/ws/{room}")
async def room(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    started = websocket.state.started
    try:
        while True:
            data = await websocket.receive_json()
            await websocket.send_json({"room": room, "got": data, "started": started})
    except WebSocketDisconnect:
        return
