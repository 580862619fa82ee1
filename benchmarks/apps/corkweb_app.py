"""corkweb serving the benchmark workloads.

Run from the repository root: ``python -m benchmarks.apps.corkweb_app PORT``.
"""
from __future__ import annotations

from benchmarks.apps import db
from benchmarks.apps.common import (
    HOST,
    MESSAGE,
    PLAINTEXT,
    ROWS,
    TEMPLATE,
    TEMPLATES_DIR,
    TITLE,
    port,
    static_dir,
)
from corkweb import App

app = App(templates=TEMPLATES_DIR)


@app.get("/plaintext")
def plaintext(res, req):
    res.end(PLAINTEXT)


@app.get("/json")
def json_(res, req):
    res.end(MESSAGE)


@app.get("/user/:id")
def user(res, req):
    res.end("User " + req.get_parameter("id"))


@app.get("/page")
def page(res, req):
    res.render(TEMPLATE, rows=ROWS, title=TITLE)


@app.post("/upload")
async def upload(res, req):
    body = await res.get_data()
    res.end(str(len(body)))


if db.DATABASE_URL:  # the TechEmpower database types (benchmarks/database.py)
    import os

    from corkweb import Postgres

    # BENCH_CORKWEB_DB picks how corkweb uses the database (benchmarks/database.py --variants):
    # "postgres" (default): corkweb.Postgres, the way the docs recommend: the same reads as the
    # peers, and the updates written in one statement (docs/databases.md, "Batched writes";
    # the peers use executemany, as their own TechEmpower apps do); "executemany": the same
    # code as the peers throughout; "asyncpg-pool": asyncpg's own Pool, as the peers use it,
    # with executemany; "pipelined": corkweb.Postgres, with the independent reads of a request
    # sent in one round trip.
    VARIANT = os.environ.get("BENCH_CORKWEB_DB", "postgres")

    if VARIANT == "asyncpg-pool":
        import asyncpg

        class AsyncpgPool:
            """asyncpg's Pool behind the two calls the handlers use."""

            pool = None

            async def open(self):
                self.pool = await asyncpg.create_pool(db.DATABASE_URL, min_size=db.POOL_SIZE,
                                                      max_size=db.POOL_SIZE)

            async def close(self):
                await self.pool.close()

            def connection(self):
                return self.pool.acquire()

            async def fetchval(self, query, *args):
                async with self.pool.acquire() as conn:
                    return await conn.fetchval(query, *args)

            async def fetch(self, query, *args):
                async with self.pool.acquire() as conn:
                    return await conn.fetch(query, *args)

        pool = AsyncpgPool()
        app.on_start(pool.open)
        app.on_shutdown(pool.close)
    else:
        pool = Postgres(app, db.DATABASE_URL, min_size=db.POOL_SIZE, max_size=db.POOL_SIZE)

    @app.get("/db")
    async def single_query(res, req):
        row_id = db.random_id()
        res.end({"id": row_id, "randomNumber": await pool.fetchval(db.READ_ROW, row_id)})

    @app.get("/fortunes")
    async def fortunes(res, req):
        rows = await pool.fetch(db.READ_FORTUNES)
        res.render(db.FORTUNES_TEMPLATE, fortunes=db.sorted_fortunes(rows))

    if VARIANT == "pipelined":

        @app.get("/queries")
        async def queries(res, req):
            ids = [db.random_id() for _ in range(db.query_count(req.get_query("queries")))]
            async with pool.connection() as conn:
                # one statement per row, pipelined: sent together, answered together
                rows = await conn.fetchmany(db.READ_ROW, [(i,) for i in ids])
            res.end([{"id": i, "randomNumber": row[0]} for i, row in zip(ids, rows, strict=True)])

        @app.get("/updates")
        async def updates(res, req):
            ids = sorted(db.random_ids(db.query_count(req.get_query("queries"))))
            async with pool.connection() as conn:
                await conn.fetchmany(db.READ_ROW, [(i,) for i in ids])
                worlds = [{"id": i, "randomNumber": db.random_id()} for i in ids]
                await conn.executemany(db.WRITE_ROW,
                                       [(w["randomNumber"], w["id"]) for w in worlds])
            res.end(worlds)

    else:

        @app.get("/queries")
        async def queries(res, req):
            ids = [db.random_id() for _ in range(db.query_count(req.get_query("queries")))]
            async with pool.connection() as conn:
                worlds = [{"id": i, "randomNumber": await conn.fetchval(db.READ_ROW, i)}
                          for i in ids]
            res.end(worlds)

        update_worlds = (db.update_worlds_batched if VARIANT == "postgres"
                         else db.update_worlds)

        @app.get("/updates")
        async def updates(res, req):
            ids = sorted(db.random_ids(db.query_count(req.get_query("queries"))))
            async with pool.connection() as conn:
                worlds = await update_worlds(conn, ids)
            res.end(worlds)


app.static("/static", static_dir())
app.ws("/ws", {"message": lambda ws, msg, opcode: ws.send(msg, opcode)})
# pub/sub fan-out (benchmarks/fanout.py): subscribers on /sub, one publisher on /pub
app.ws("/sub", {"open": lambda ws: ws.subscribe("fanout")})
app.ws("/pub", {"message": lambda ws, msg, opcode: app.publish("fanout", msg, opcode)})

if __name__ == "__main__":
    app.run(host=HOST, port=port())
