"""examples/database: SQLite queries in a thread, awaited by async handlers."""

from __future__ import annotations

import asyncio

import pytest
from example_loader import load_example

from corkweb.testing import TestClient


@pytest.fixture
def client(tmp_path):
    app = load_example("database").create_app(str(tmp_path / "notes.db"))
    with TestClient(app) as client:
        yield client


def test_add_list_get_delete(client) -> None:
    r = client.post("/notes", json={"text": "buy cork"})
    assert r.status_code == 201
    note = r.json()
    assert note["id"] == 1 and note["text"] == "buy cork" and note["created"]
    client.post("/notes", json={"text": "bottle wine"})
    assert [n["text"] for n in client.get("/notes").json()] == ["buy cork", "bottle wine"]
    assert [n["id"] for n in client.get("/notes", params={"limit": "1"}).json()] == [1]
    assert client.get("/notes/1").json()["text"] == "buy cork"
    assert client.delete("/notes/1").status_code == 204
    assert client.get("/notes/1").status_code == 404


def test_bad_input_is_400(client) -> None:
    assert client.post("/notes", json={"text": " "}).status_code == 400
    assert client.post("/notes", json=["x"]).status_code == 400
    assert client.get("/notes", params={"limit": "-1"}).status_code == 400


def test_concurrent_requests_share_the_database(client) -> None:
    async def main():
        async with client.async_client() as http:
            await asyncio.gather(*(http.post("/notes", json={"text": f"n{i}"})
                                   for i in range(20)))
            return (await http.get("/notes")).json()

    notes = asyncio.run(main())
    assert sorted(n["text"] for n in notes) == sorted(f"n{i}" for i in range(20))


def test_data_survives_a_restart(tmp_path) -> None:
    module = load_example("database")
    path = str(tmp_path / "keep.db")
    with TestClient(module.create_app(path)) as client:
        client.post("/notes", json={"text": "kept"})
    with TestClient(module.create_app(path)) as client:
        assert [n["text"] for n in client.get("/notes").json()] == ["kept"]
