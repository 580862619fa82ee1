"""The typed POST workload's structures in msgspec, shared by the apps that validate with it
(corkweb's typed handlers and Litestar): both validate into exactly the same types."""
from __future__ import annotations

from typing import Annotated

import msgspec

from benchmarks.apps.typed_common import STOCK_MAX


class ItemIn(msgspec.Struct):
    name: str
    price: float
    tags: list[str]
    stock: Annotated[int, msgspec.Meta(ge=0, le=STOCK_MAX)] | None = None


class ItemOut(msgspec.Struct):
    id: int
    name: str
    price: float
