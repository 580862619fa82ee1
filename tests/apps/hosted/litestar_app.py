"""A Litestar application with lifespan hooks (the part socketify.py's users saw crash)."""

from __future__ import annotations

from litestar import Litestar, get, post
from litestar.params import JSONBody

events: list[str] = []


async def on_startup() -> None:
    events.append("startup")


async def on_shutdown() -> None:
    events.append("shutdown")


@get("/plaintext", media_type="text/plain")
async def plaintext() -> str:
    return "Hello, World!"


@get("/events")
async def seen() -> list[str]:
    return events


@post("/double")
async def double(data: JSONBody[dict[str, int]]) -> dict[str, int]:
    return {key: value * 2 for key, value in data.items()}


app = Litestar(route_handlers=[plaintext, seen, double], on_startup=[on_startup],
               on_shutdown=[on_shutdown])
