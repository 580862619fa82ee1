"""BlackSheep (pydantic validation through ``FromJSON``) on Granian (ASGI, 1 worker, 1 runtime
thread, uvloop) serving the typed POST workload. Run from the repository root:
``python -m benchmarks.apps.typed_blacksheep_app PORT``.
"""
from __future__ import annotations

from blacksheep import Application, FromJSON
from blacksheep.server.responses import json
from blacksheep.server.routing import Router
from pydantic import BaseModel, Field

from benchmarks.apps.common import HOST, port
from benchmarks.apps.typed_common import STOCK_MAX


class ItemIn(BaseModel):
    name: str
    price: float
    tags: list[str]
    stock: int | None = Field(default=None, ge=0, le=STOCK_MAX)


# A router of its own: Granian's worker imports this module twice (see blacksheep_app.py).
app = Application(router=Router())


@app.router.post("/items")
async def create(data: FromJSON[ItemIn]):
    item = data.value
    return json({"id": 1, "name": item.name, "price": item.price}, status=201)


if __name__ == "__main__":
    from granian import Granian

    Granian("benchmarks.apps.typed_blacksheep_app:app", address=HOST, port=port(),
            interface="asgi", workers=1, runtime_threads=1, loop="uvloop",
            log_access=False, log_level="warning").serve()
