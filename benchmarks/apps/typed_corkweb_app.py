"""corkweb serving the typed POST workload three ways: ``POST /items`` as an async typed
handler (msgspec validation, a Struct returned), ``POST /sync/items`` as the same handler
written ``def`` (answered without a task when the body came with the head), and
``POST /classic/items`` as the classic equivalent (``await res.get_json()`` +
``res.cork_end``, no validation).

Run from the repository root: ``python -m benchmarks.apps.typed_corkweb_app PORT``.
"""
from __future__ import annotations

from benchmarks.apps.common import HOST, port
from benchmarks.apps.typed_msgspec import ItemIn, ItemOut
from corkweb import App

app = App(templates=None)


@app.post("/items", status=201)
async def create(item: ItemIn) -> ItemOut:
    return ItemOut(id=1, name=item.name, price=item.price)


@app.post("/sync/items", status=201)
def create_sync(item: ItemIn) -> ItemOut:
    return ItemOut(id=1, name=item.name, price=item.price)


@app.post("/classic/items")
async def create_classic(res, req):
    item = await res.get_json()
    res.write_status(201).cork_end({"id": 1, "name": item["name"], "price": item["price"]})


if __name__ == "__main__":
    app.run(host=HOST, port=port())
