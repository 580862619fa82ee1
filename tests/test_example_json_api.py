"""examples/json_api: typed CRUD on a route group, 422 for bad input, 404 for missing items,
and its OpenAPI document."""

from __future__ import annotations

import asyncio

import pytest
from example_loader import load_example
from openapi_spec_validator import validate

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


def test_bad_input_is_422_with_locations(client) -> None:
    r = client.post("/api/todos", json={"title": ""})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "title"]]
    r = client.patch("/api/todos/abc", json={"done": "yes"})
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["errors"]] == [["path", "todo_id"], ["body", "done"]]
    assert client.get("/api/todos", params={"done": "maybe"}).status_code == 422
    r = client.post("/api/todos", content=b"{not json",
                    headers={"accept": "application/json", "content-type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["message"]


def test_missing_items(client) -> None:
    r = client.get("/api/todos/99", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.json()["message"] == "no to-do with id 99"


def test_openapi_document_and_docs_page(client) -> None:
    doc = client.get("/openapi.json").json()
    validate(doc)
    assert doc["info"] == {"title": "To-do API", "version": "1.0"}
    assert set(doc["paths"]) == {"/api/todos", "/api/todos/{todo_id}"}
    create = doc["paths"]["/api/todos"]["post"]
    assert create["tags"] == ["todos"]
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Todo"}
    assert "404" in doc["paths"]["/api/todos/{todo_id}"]["get"]["responses"]
    assert client.get("/docs").status_code == 200


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
