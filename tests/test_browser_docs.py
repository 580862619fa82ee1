"""The interactive API documentation page in a real browser, offline.

Chromium (Debian's, driven by Playwright, as in test_browser.py) opens ``/docs`` with every
request to anything but the corkweb server refused, and finds the operations listed and one
of them expanded with its parameters. Skipped without chromium or playwright.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from browser_helpers import chromium, needs_browser

from corkweb import App, Header
from corkweb.testing import TestServer

pytestmark = needs_browser


class ItemIn(msgspec.Struct):
    name: str
    price: Annotated[float, msgspec.Meta(gt=0)]


class ItemOut(msgspec.Struct):
    id: int
    name: str


def make_app() -> App:
    app = App(templates=None, title="Shop", version="1.0", docs="/docs")

    @app.post("/shops/:shop_id/items", status=201, tags=["items"], summary="Add an item")
    async def create_item(shop_id: int, item: ItemIn,
                          x_token: Annotated[str | None, Header()] = None) -> ItemOut:
        return ItemOut(id=shop_id, name=item.name)

    @app.get("/items", tags=["items"], summary="List the items")
    def list_items(limit: int = 10) -> list[ItemOut]:
        return []

    return app


def test_docs_page_lists_the_operations_offline() -> None:
    from playwright.sync_api import expect

    with TestServer(make_app()) as server, chromium() as browser:
        context = browser.new_context()
        context.set_default_timeout(15_000)
        refused: list[str] = []

        def only_the_server(route) -> None:
            if route.request.url.startswith(server.url + "/"):
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort()

        context.route("**/*", only_the_server)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Shop")
        create = page.locator(".opblock-post").filter(has_text="/shops/{shop_id}/items")
        expect(create).to_contain_text("Add an item")
        expect(page.locator(".opblock-get")).to_contain_text("/items")
        create.locator(".opblock-summary").click()
        expect(create.locator(".parameters")).to_contain_text("shop_id")
        expect(create.locator(".parameters")).to_contain_text("x-token")
        expect(create).to_contain_text("422")
        assert errors == [], errors
        assert refused == [], f"the page asked for other hosts: {refused}"
