"""App for tests/test_postgres_syscalls.py: argv is the port and a PostgreSQL DSN."""

import sys

from corkweb import App, Postgres

app = App(templates=None)
db = Postgres(app, sys.argv[2], min_size=1, max_size=1)


@app.get("/two-queries")
async def two_queries(res, req):
    res.write_status(200)
    res.write_header("x-before", "first await")
    async with db.connection() as conn:
        first = await conn.fetchval("SELECT 40 + $1::int", 1)
        second = await conn.fetchval("SELECT $1::int + 1", first)
    res.write_header("x-after", "second await")
    res.end({"answer": second})


app.run(port=int(sys.argv[1]))
