"""FastAPI (pydantic validation) on uvicorn (httptools, uvloop, no access log) serving the
typed POST workload. Run from the repository root:
``python -m benchmarks.apps.typed_fastapi_app PORT``.
"""
from __future__ import annotations

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field

from benchmarks.apps.common import HOST, port
from benchmarks.apps.typed_common import STOCK_MAX


class ItemIn(BaseModel):
    name: str
    price: float
    tags: list[str]
    stock: int | None = Field(default=None, ge=0, le=STOCK_MAX)


class ItemOut(BaseModel):
    id: int
    name: str
    price: float


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/items", status_code=201)
async def create(item: ItemIn) -> ItemOut:
    return ItemOut(id=1, name=item.name, price=item.price)


if __name__ == "__main__":
    uvicorn.run(app, host=HOST, port=port(), http="httptools", loop="uvloop",
                access_log=False, log_level="warning")
