"""``app.mount(prefix, other_app)``: ASGI and WSGI apps under a prefix of a corkweb app, beside
native routes, with their lifespan, WebSockets and the group's middleware."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from apps.hosted import flask_app, starlette_app
from websockets.sync.client import connect

from corkweb import App
from corkweb.testing import TestServer


def make_app() -> App:
    app = App(templates=None)

    @app.get("/")
    def home(res, req):  # type: ignore[no-untyped-def]
        res.end("native")

    app.mount("/legacy", starlette_app.app)
    seen: list[str] = []

    def count(res, req, data):  # type: ignore[no-untyped-def]
        seen.append(req.get_url())
        return True

    group = app.router("/old", count)
    group.mount("/flask", flask_app.app)
    app.seen = seen  # type: ignore[attr-defined]
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer(make_app()) as running:
        yield running


def test_native_and_mounted_routes_side_by_side(server: TestServer) -> None:
    assert httpx.get(server.url + "/").text == "native"
    assert httpx.get(server.url + "/legacy/plaintext").text == "Hello, World!"
    data = httpx.get(server.url + "/legacy/info").json()
    assert data["root_path"] == "/legacy" and data["path"] == "/legacy/info"
    assert data["greeting"] == "hello from lifespan"  # the mounted app's lifespan ran
    assert httpx.get(server.url + "/legacy/nope").status_code == 404
    assert httpx.get(server.url + "/elsewhere").status_code == 404


def test_mounted_wsgi_app_under_a_group_with_middleware(server: TestServer) -> None:
    data = httpx.get(server.url + "/old/flask/info").json()
    assert data["path"] == "/info" and data["script_root"] == "/old/flask"
    assert httpx.get(server.url + "/old/flask/plaintext").text == "Hello, World!"
    assert "/old/flask/plaintext" in server.app.seen


def test_websocket_through_a_mount(server: TestServer) -> None:
    with connect(server.ws_url + "/legacy/ws") as ws:
        ws.send("mounted")
        assert ws.recv() == "echo: mounted"


def test_bad_prefixes_and_corkweb_apps_are_refused() -> None:
    app = App(templates=None)
    with pytest.raises(ValueError, match="must start with '/'"):
        app.mount("legacy", starlette_app.app)
    with pytest.raises(ValueError, match="not 'corkweb'"):
        app.mount("/x", App(templates=None))
