"""Litestar (msgspec validation) on uvicorn (httptools, uvloop, no access log) serving the
typed POST workload. Run from the repository root:
``python -m benchmarks.apps.typed_litestar_app PORT``.
"""
from __future__ import annotations

import uvicorn
from litestar import Litestar, post

from benchmarks.apps.common import HOST, port
from benchmarks.apps.typed_msgspec import ItemIn, ItemOut


@post("/items", status_code=201)
async def create(data: ItemIn) -> ItemOut:
    return ItemOut(id=1, name=data.name, price=data.price)


app = Litestar([create], openapi_config=None, logging_config=None)

if __name__ == "__main__":
    uvicorn.run(app, host=HOST, port=port(), http="httptools", loop="uvloop",
                access_log=False, log_level="warning")
