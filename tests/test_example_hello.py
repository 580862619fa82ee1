"""examples/hello: the smallest app, driven over a real socket."""

from __future__ import annotations

import pytest
from example_loader import load_example

from corkweb.testing import TestClient


@pytest.fixture(scope="module")
def client():
    with TestClient(load_example("hello").app) as client:
        yield client


def test_home(client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.text == "Hello, World!"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_json(client) -> None:
    r = client.get("/json")
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"message": "Hello, World!"}


def test_route_parameter(client) -> None:
    assert client.get("/user/42").text == "User 42"


def test_unknown_path_is_404(client) -> None:
    assert client.get("/nope").status_code == 404
