"""Real framework applications hosted over ASGI, over real sockets: FastAPI (with a WebSocket
and lifespan state), Litestar (lifespan hooks) and a minimal Django project."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from corkweb.asgi import HostedApp
from corkweb.testing import TestServer


@pytest.fixture(scope="module")
def fastapi_server() -> Iterator[TestServer]:
    from apps.hosted import fastapi_app

    with TestServer(HostedApp(fastapi_app.app)) as running:
        yield running


def test_fastapi_routes_validation_and_lifespan_state(fastapi_server: TestServer) -> None:
    url = fastapi_server.url
    assert httpx.get(url + "/plaintext").text == "Hello, World!"
    assert httpx.get(url + "/json").json() == {"message": "Hello, World!"}
    r = httpx.post(url + "/items/7", json={"name": "cork", "price": 1.5})
    assert r.status_code == 201 and r.json() == {"id": 7, "name": "cork", "price": 1.5}
    assert httpx.get(url + "/items/7").json() == {"name": "cork", "price": 1.5}
    r = httpx.post(url + "/items/8", json={"name": "cork"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "price"]
    assert httpx.get(url + "/items/x").status_code == 422
    assert httpx.get(url + "/sync").json() == {"ran": "in a thread"}


def test_fastapi_websocket(fastapi_server: TestServer) -> None:
    with connect(fastapi_server.ws_url + "/ws/lobby") as ws:
        for i in range(3):
            ws.send(f'{{"n": {i}}}')
            assert ws.recv() == f'{{"room":"lobby","got":{{"n":{i}}},"started":true}}'


def test_litestar_lifespan_hooks_run_once_each() -> None:
    from apps.hosted import litestar_app

    litestar_app.events.clear()
    with TestServer(HostedApp(litestar_app.app)) as running:
        assert httpx.get(running.url + "/plaintext").text == "Hello, World!"
        assert httpx.get(running.url + "/events").json() == ["startup"]
        r = httpx.post(running.url + "/double", json={"a": 2, "b": 21})
        assert r.status_code == 201 and r.json() == {"a": 4, "b": 42}
    assert litestar_app.events == ["startup", "shutdown"]


def test_django_asgi_project() -> None:
    from apps.hosted.django_project import project

    with TestServer(HostedApp(project.asgi)) as running:
        assert httpx.get(running.url + "/hello").text == "Hello from Django"
        data = httpx.get(running.url + "/info?q=cork").json()
        assert data["path"] == "/info" and data["query"] == "cork"
        assert data["remote"] == "127.0.0.1"
        r = httpx.post(running.url + "/upload", content=b"x" * 100_000,
                       headers={"content-type": "application/octet-stream"})
        assert r.json() == {"size": 100_000, "type": "application/octet-stream"}
        assert httpx.get(running.url + "/missing").status_code == 404
