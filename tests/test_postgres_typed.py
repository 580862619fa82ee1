"""corkweb.Postgres in typed handlers: a connection per request through ``Depends``."""

from __future__ import annotations

import pytest

from corkweb import App, Depends, Postgres
from corkweb.testing import TestClient

pytest.importorskip("asyncpg", reason="asyncpg not installed (pip install -e .[test])")
msgspec = pytest.importorskip("msgspec")


class TagIn(msgspec.Struct):
    name: str


def test_typed_handlers_take_a_connection_with_depends(pg_dsn) -> None:
    app = App(templates=None)
    db = Postgres(app, pg_dsn, max_size=1)

    @app.on_start
    async def schema():
        await db.execute("CREATE TABLE tag (name text PRIMARY KEY)")

    @app.post("/tags", status=201)
    async def add(tag: TagIn, conn=Depends(db.session)) -> dict:
        await conn.execute("INSERT INTO tag (name) VALUES ($1)", tag.name)
        return {"name": tag.name}

    @app.get("/tags/count")
    async def count(conn=Depends(db.session)) -> dict:
        return {"count": await conn.fetchval("SELECT count(*) FROM tag"),
                "in_transaction": conn.is_in_transaction()}

    @app.get("/stateful")
    async def stateful(conn=Depends(db.session)) -> dict:
        await conn.execute("SET application_name = 'typed'")
        return {"ok": True}

    @app.get("/name")
    async def name(conn=Depends(db.session)) -> dict:
        return {"name": await conn.fetchval("SELECT current_setting('application_name')")}

    with TestClient(app) as client:
        assert client.post("/tags", json={"name": "cork"}).status_code == 201
        # a unique violation raised in the handler itself (outside any block): still 409
        r = client.post("/tags", json={"name": "cork"}, headers={"accept": "application/json"})
        assert r.status_code == 409 and "tag_pkey" in r.json()["message"]
        # the only connection came back after each answer, reset when it needed it
        assert client.get("/tags/count").json() == {"count": 1, "in_transaction": False}
        assert client.get("/stateful").json() == {"ok": True}
        assert client.get("/name").json() == {"name": ""}
