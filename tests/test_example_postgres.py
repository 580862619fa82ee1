"""examples/postgres: the JSON API and the HTML page against a real PostgreSQL server."""

from __future__ import annotations

import asyncio

import pytest
from example_loader import load_example

from corkweb.testing import TestClient

pytest.importorskip("asyncpg", reason="asyncpg not installed (pip install -e .[test])")


@pytest.fixture
def client(pg_dsn):
    app = load_example("postgres").create_app(pg_dsn, max_size=4)
    with TestClient(app) as client:
        yield client


def add(client, title: str, author: str = "Ursula K. Le Guin", year: int | None = 1969):
    r = client.post("/api/books", json={"title": title, "author": author, "year": year})
    assert r.status_code == 201, r.text
    return r


def test_create_get_update_delete(client) -> None:
    r = add(client, "The Left Hand of Darkness")
    book = r.json()
    assert r.headers["location"] == f"/api/books/{book['id']}"
    assert book["title"] == "The Left Hand of Darkness" and book["year"] == 1969
    assert book["created"]
    assert client.get(f"/api/books/{book['id']}").json() == book

    r = client.patch(f"/api/books/{book['id']}", json={"year": 1970})
    assert r.status_code == 200 and r.json()["year"] == 1970
    assert r.json()["author"] == "Ursula K. Le Guin"
    r = client.put(f"/api/books/{book['id']}",
                   json={"title": "The Dispossessed", "author": "Le Guin"})
    assert r.status_code == 200
    assert (r.json()["title"], r.json()["author"]) == ("The Dispossessed", "Le Guin")

    assert client.delete(f"/api/books/{book['id']}").status_code == 204
    assert client.get(f"/api/books/{book['id']}").status_code == 404
    assert client.delete(f"/api/books/{book['id']}").status_code == 404
    assert client.patch(f"/api/books/{book['id']}", json={"year": 1}).status_code == 404


def test_list_paginates(client) -> None:
    for i in range(5):
        add(client, f"Book {i}")
    page = client.get("/api/books", params={"limit": "2", "offset": "1"}).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [b["title"] for b in page["items"]] == ["Book 1", "Book 2"]
    assert client.get("/api/books", params={"offset": "5"}).json()["items"] == []
    assert len(client.get("/api/books").json()["items"]) == 5
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"offset": "-1"}):
        r = client.get("/api/books", params=bad)
        # typed handlers: a query value out of its range is a 422 naming it
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["loc"] == ["query", next(iter(bad))]


def test_duplicate_title_is_409_naming_the_constraint(client) -> None:
    add(client, "Solaris", "Stanisław Lem", 1961)
    r = client.post("/api/books", json={"title": "Solaris", "author": "Someone"},
                    headers={"accept": "application/json"})
    assert r.status_code == 409
    assert "book_title_key" in r.json()["message"] and "Solaris" in r.json()["message"]
    other = add(client, "Fiasco", "Stanisław Lem", 1986).json()
    r = client.patch(f"/api/books/{other['id']}", json={"title": "Solaris"})
    assert r.status_code == 409
    # the failed statements left the connections usable
    assert client.get("/api/books").json()["total"] == 2


@pytest.mark.parametrize("body", [
    {"author": "no title"},
    {"title": "", "author": "a"},
    {"title": "t", "author": "a", "year": "1999"},
    {"title": "t", "author": "a", "year": 5000},
    {"title": "t", "author": "a", "pages": 3},
    ["not", "an", "object"],
])
def test_invalid_books_are_422(client, body) -> None:
    r = client.post("/api/books", json=body)
    assert r.status_code == 422, r.text
    assert client.get("/api/books").json()["total"] == 0


def test_bad_json_is_400_and_empty_patch_is_422(client) -> None:
    assert client.post("/api/books", content=b"{nope",
                       headers={"content-type": "application/json"}).status_code == 400
    book = add(client, "Roadside Picnic", "Strugatsky", 1972).json()
    assert client.patch(f"/api/books/{book['id']}", json={}).status_code == 422


def test_html_page_lists_books_escaped(client) -> None:
    empty = client.get("/")
    assert empty.status_code == 200 and "The shelf is empty" in empty.text
    add(client, "<script>alert(1)</script>", "Mallory & Co")
    add(client, "Another", "Mallory & Co")
    r = client.get("/")
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "<script>" not in r.text
    assert "Mallory &amp; Co" in r.text
    assert "2 books by 1 author." in r.text


def test_concurrent_creates_share_the_pool(client) -> None:
    async def main():
        async with client.async_client() as http:
            answers = await asyncio.gather(*(
                http.post("/api/books", json={"title": f"T{i}", "author": "A"})
                for i in range(30)))
            health = (await http.get("/health")).json()
            return [a.status_code for a in answers], health

    statuses, health = asyncio.run(main())
    assert statuses == [201] * 30
    assert health["database"] == "ok" and 1 <= health["pool"]["size"] <= 4
    assert client.get("/api/books").json()["total"] == 30
