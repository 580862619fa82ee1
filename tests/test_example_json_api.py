"""examples/json_api: CRUD on a route group, validation answered 400, missing items 404."""

from __future__ import annotations

import asyncio

import pytest
from example_loader import load_example

from corkweb.testing import TestClient


@pytest.fixture
def client():
    # A fresh app (and store) per test: an app is frozen once it serves.
    with TestClient(load_example("json_api").create_app()) as client:
        yield client


def test_create_read_update_delete(client) -> None:
    r = client.post("/api/todos", json={"title": "  write docs "})
    assert r.status_code == 201
    assert r.json() == {"id": 1, "title": "write docs", "done": False}
    assert r.headers["location"] == "/api/todos/1"

    assert client.get("/api/todos/1").json()["title"] == "write docs"
    r = client.patch("/api/todos/1", json={"done": True})
    assert r.status_code == 200 and r.json()["done"] is True
    assert client.get("/api/todos", params={"done": "true"}).json() == [
        {"id": 1, "title": "write docs", "done": True}]
    assert client.get("/api/todos", params={"done": "false"}).json() == []

    r = client.delete("/api/todos/1")
    assert r.status_code == 204 and r.content == b""
    assert client.get("/api/todos/1").status_code == 404


def test_validation_errors_are_400_with_a_message(client) -> None:
    r = client.post("/api/todos", json={"title": ""}, headers={"accept": "application/json"})
    assert r.status_code == 400
    assert "title" in r.json()["message"]
    r = client.post("/api/todos", content=b"{not json",
                    headers={"accept": "application/json", "content-type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["message"]


def test_missing_and_malformed_ids(client) -> None:
    r = client.get("/api/todos/99", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.json()["message"] == "no to-do with id 99"
    # ":id<int>" does not match "abc": no route, so 404 too
    assert client.get("/api/todos/abc").status_code == 404


def test_async_client(client) -> None:
    async def main():
        async with client.async_client() as http:
            created = await asyncio.gather(
                *(http.post("/api/todos", json={"title": f"t{i}"}) for i in range(5)))
            listed = await http.get("/api/todos")
        return created, listed

    created, listed = asyncio.run(main())
    assert sorted(r.json()["id"] for r in created) == [1, 2, 3, 4, 5]
    assert len(listed.json()) == 5
