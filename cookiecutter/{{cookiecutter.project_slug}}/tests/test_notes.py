"""The notes API against a real {% if cookiecutter.database == "postgres" %}PostgreSQL server{% else %}SQLite database{% endif %}."""

import asyncio


def test_add_list_get_delete(client):
    r = client.post("/api/notes", json={"text": "buy cork"})
    assert r.status_code == 201
    note = r.json()
    assert note["text"] == "buy cork" and note["created"]
    assert r.headers["location"] == f"/api/notes/{note['id']}"
    assert client.get(f"/api/notes/{note['id']}").json() == note
    client.post("/api/notes", json={"text": "bottle wine"})
    page = client.get("/api/notes").json()
    assert [n["text"] for n in page["items"]] == ["buy cork", "bottle wine"]
    page = client.get("/api/notes", params={"limit": "1", "offset": "1"}).json()
    assert [n["text"] for n in page["items"]] == ["bottle wine"]
    assert client.delete(f"/api/notes/{note['id']}").status_code == 204
    assert client.get(f"/api/notes/{note['id']}").status_code == 404
    assert client.delete(f"/api/notes/{note['id']}").status_code == 404


def test_bad_input_is_422_and_bad_json_400(client):
    r = client.post("/api/notes", json={"text": "  "})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["loc"] == ["body", "text"]
    assert client.post("/api/notes", json=["x"]).status_code == 422
    assert client.post("/api/notes", content=b"{oops",
                       headers={"content-type": "application/json"}).status_code == 400
    r = client.get("/api/notes", params={"limit": "0", "offset": "-1"})
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["errors"]] == [["query", "limit"], ["query", "offset"]]
    assert client.get("/api/notes/abc").status_code == 422
    assert client.get("/api/notes").json()["items"] == []


def test_concurrent_requests_share_the_database(client):
    async def main():
        async with client.async_client() as http:
            await asyncio.gather(*(http.post("/api/notes", json={"text": f"n{i}"})
                                   for i in range(20)))
            return (await http.get("/api/notes", params={"limit": "100"})).json()["items"]

    notes = asyncio.run(main())
    assert sorted(n["text"] for n in notes) == sorted(f"n{i}" for i in range(20))


def test_notes_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/notes"]) == {"get", "post"}
    limit = paths["/api/notes"]["get"]["parameters"][0]
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
