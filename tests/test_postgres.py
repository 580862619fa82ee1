"""corkweb.postgres against a real PostgreSQL server: failures answered, state never leaked.

The server is the session's throw-away cluster (corkweb.testing.PostgresServer); one test stops and
restarts it to take the database away from under a running request.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from corkweb import App, ServiceUnavailable
from corkweb.postgres import PoolTimeout, Postgres, may_leave_session_state
from corkweb.testing import TestClient

pytest.importorskip("asyncpg", reason="asyncpg not installed (pip install -e .[test])")


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    """Poll an external condition (the server's own view, through psql) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def sleeping_queries(cluster) -> int:
    return int(cluster.psql("SELECT count(*) FROM pg_stat_activity "
                            "WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'"))


def make_app(dsn: str, **options) -> tuple[App, Postgres]:
    app = App(templates=None)
    db = Postgres(app, dsn, **options)

    @app.get("/one")
    async def one(res, req):
        res.end({"one": await db.fetchval("SELECT 1")})

    @app.get("/sleep/:seconds")
    async def sleep(res, req):
        await db.execute(f"SELECT pg_sleep({float(req.get_parameter('seconds'))})")
        res.end("slept")

    @app.get("/setting")
    async def setting(res, req):
        res.end({"value": await db.fetchval("SELECT current_setting('application_name')")})

    @app.get("/set")
    async def set_name(res, req):
        async with db.connection() as conn:
            await conn.execute("SET application_name = 'leaked'")
            res.end({"value": await conn.fetchval("SELECT current_setting('application_name')")})

    @app.get("/open-transaction")
    async def open_transaction(res, req):
        async with db.connection() as conn:
            await conn.execute("BEGIN")
            await conn.execute("SET LOCAL application_name = 'in-transaction'")
        res.end("left a transaction open")

    @app.get("/lock")
    async def lock(res, req):
        async with db.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(7)")
        res.end("locked")

    @app.get("/try-lock")
    async def try_lock(res, req):
        async with db.connection() as conn:
            got = await conn.fetchval("SELECT pg_try_advisory_lock(7)")
            if got:
                await conn.execute("SELECT pg_advisory_unlock(7)")
        res.end({"got": got})

    @app.get("/in-transaction")
    async def in_transaction(res, req):
        async with db.connection() as conn:
            res.end({"in_transaction": conn.is_in_transaction(),
                     "name": await conn.fetchval("SELECT current_setting('application_name')")})

    @app.get("/pool")
    def pool(res, req):
        res.end({"size": db.size, "idle": db.idle})

    return app, db


def test_session_state_never_leaks_between_requests(pg_dsn) -> None:
    # One connection: every request gets the one the previous request used.
    app, _ = make_app(pg_dsn, max_size=1)
    with TestClient(app) as client:
        assert client.get("/setting").json()["value"] == ""
        assert client.get("/set").json()["value"] == "leaked"
        assert client.get("/setting").json()["value"] == ""  # reset on release
        assert client.get("/open-transaction").status_code == 200
        state = client.get("/in-transaction").json()
        assert state == {"in_transaction": False, "name": ""}  # rolled back
        assert client.get("/lock").status_code == 200
        assert client.get("/try-lock").json()["got"] is True  # session lock released
        assert client.get("/pool").json() == {"size": 1, "idle": 1}


def test_database_going_away_is_503_and_the_pool_recovers(pg_cluster, pg_dsn) -> None:
    app, _ = make_app(pg_dsn, max_size=2, acquire_timeout=2)
    with TestClient(app) as client:
        assert client.get("/one").json() == {"one": 1}
        answers: list[httpx.Response] = []
        inflight = threading.Thread(
            target=lambda: answers.append(httpx.get(client.server.url + "/sleep/30",
                                                    timeout=20)))
        inflight.start()
        try:
            wait_for(lambda: sleeping_queries(pg_cluster) == 1, "the query to run")
            pg_cluster.stop("fast")  # ends every session: mid-request for /sleep
            inflight.join(20)
            assert not inflight.is_alive(), "the request whose database went away hung"
            (r,) = answers
            assert r.status_code == 503, r.text
            assert "database" in r.text and r.headers["retry-after"] == "1"
            down = client.get("/one", headers={"accept": "application/json"})
            assert down.status_code == 503, down.text
            assert down.json()["message"].startswith("database unavailable")
        finally:
            if not pg_cluster.running:
                pg_cluster.start()
        # back: new connections replace the dead ones, no restart of the app needed
        assert client.get("/one").json() == {"one": 1}
        assert client.get("/one").json() == {"one": 1}
        assert client.get("/pool").json()["size"] <= 2


def test_query_timeout_is_503_and_the_query_is_cancelled(pg_cluster, pg_dsn) -> None:
    app, _ = make_app(pg_dsn, max_size=1, query_timeout=0.3)
    with TestClient(app) as client:
        started = time.monotonic()
        r = client.get("/sleep/20", headers={"accept": "application/json"})
        assert r.status_code == 503
        assert r.json()["message"] == "database query timed out after 0.3 s"
        assert time.monotonic() - started < 5
        wait_for(lambda: sleeping_queries(pg_cluster) == 0, "the server to cancel the query")
        assert client.get("/one").json() == {"one": 1}  # the only slot is usable again


def test_statement_timeout_on_the_server_is_503(pg_dsn) -> None:
    app, _ = make_app(pg_dsn, max_size=1, server_settings={"statement_timeout": "200"})
    with TestClient(app) as client:
        r = client.get("/sleep/20")
        assert r.status_code == 503 and "cancel" in r.text
        assert client.get("/one").json() == {"one": 1}


def test_exhausted_pool_waits_a_bounded_time_then_503(pg_cluster, pg_dsn) -> None:
    app, _ = make_app(pg_dsn, max_size=2, acquire_timeout=0.3, retry_after=2)
    with TestClient(app) as client:

        async def load():
            async with client.async_client() as http:
                holders = [asyncio.ensure_future(http.get("/sleep/1.5", timeout=10))
                           for _ in range(2)]
                await asyncio.to_thread(wait_for, lambda: sleeping_queries(pg_cluster) == 2,
                                        "both connections to be busy")
                started = time.monotonic()
                waiting = await asyncio.gather(*(http.get("/one", timeout=10)
                                                 for _ in range(20)))
                waited = time.monotonic() - started
                return await asyncio.gather(*holders), waiting, waited

        holders, waiting, waited = asyncio.run(load())
        assert [r.status_code for r in holders] == [200, 200]
        assert [r.status_code for r in waiting] == [503] * 20
        assert all(r.headers["retry-after"] == "2" for r in waiting)
        assert "no free connection within 0.3 s" in waiting[0].text
        assert 0.3 <= waited < 1.4  # bounded: answered before the holders finished
        assert client.get("/one").json() == {"one": 1}
        assert client.get("/pool").json()["size"] == 2


def test_waiters_get_connections_as_they_come_back(pg_dsn) -> None:
    app, _ = make_app(pg_dsn, max_size=2, acquire_timeout=10)
    with TestClient(app) as client:

        async def load():
            async with client.async_client() as http:
                return await asyncio.gather(*(http.get("/sleep/0.05", timeout=20)
                                              for _ in range(40)))

        assert [r.status_code for r in asyncio.run(load())] == [200] * 40
        assert client.get("/pool").json() == {"size": 2, "idle": 2}


def test_pool_timeout_is_a_503_error_with_retry_after(pg_dsn) -> None:
    async def main():
        db = Postgres(None, pg_dsn, max_size=1, acquire_timeout=0.05)
        await db.open()
        try:
            async with db.connection():
                with pytest.raises(PoolTimeout) as caught:
                    async with db.connection():
                        raise AssertionError("a second connection from a pool of one")
            assert caught.value.status == 503
            assert ("retry-after", "1") in caught.value.headers
            assert await db.fetchval("SELECT 2") == 2
        finally:
            await db.close()

    asyncio.run(main())


def test_unreachable_database_at_start_fails_loudly(pg_cluster) -> None:
    db = Postgres(None, f"postgresql://postgres@127.0.0.1:{pg_cluster.port + 1}/x",
                  acquire_timeout=2)
    with pytest.raises(OSError):
        asyncio.run(db.open())


@pytest.mark.parametrize(("query", "stateful"), [
    ("SELECT id, randomnumber FROM world WHERE id = $1", False),
    ("UPDATE world SET randomnumber = $1 WHERE id = $2", False),
    ("SET LOCAL statement_timeout = 100", False),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", False),
    ("SELECT pg_advisory_xact_lock(1)", False),
    ("INSERT INTO settings (name) VALUES ('SET x')", False),
    ("SET search_path = app", True),
    ("  set\ttime zone 'UTC'", True),
    ("SELECT 1; SET work_mem = '64MB'", True),
    ("-- comment\nSET role admin", True),
    ("/* c */ RESET ALL", True),
    ("LISTEN events", True),
    ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", True),
    ("PREPARE p AS SELECT 1", True),
    ("CREATE TEMP TABLE t (x int)", True),
    ("create temporary table t (x int)", True),
    ("SELECT set_config('app.user', '1', false)", True),
    ("SELECT pg_advisory_lock(1)", True),
    ("SELECT pg_try_advisory_lock_shared(1)", True),
    ("DO $$ BEGIN PERFORM 1; END $$", True),
    ("DISCARD ALL", True),
    ("DEALLOCATE ALL", True),
])
def test_statements_that_may_leave_session_state(query: str, stateful: bool) -> None:
    assert may_leave_session_state(query) is stateful


def test_bad_pool_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="min_size"):
        Postgres(None, "postgresql://x", min_size=3, max_size=2)
    with pytest.raises(ValueError, match="reset"):
        Postgres(None, "postgresql://x", reset="never")
    with pytest.raises(ValueError, match="acquire_timeout"):
        Postgres(None, "postgresql://x", acquire_timeout=0)



def test_acquire_and_release_reset_a_connection_that_needs_it(pg_dsn) -> None:
    async def main():
        db = Postgres(None, pg_dsn, max_size=1)
        await db.open()
        try:
            conn = await db.acquire()
            await conn.execute("SET application_name = 'by hand'")
            await db.release(conn)
            assert await db.fetchval("SELECT current_setting('application_name')") == ""
            assert (db.size, db.idle) == (1, 1)
        finally:
            await db.close()

    asyncio.run(main())


def test_close_lets_requests_holding_or_waiting_for_a_connection_finish(pg_dsn) -> None:
    async def main():
        db = Postgres(None, pg_dsn, max_size=1, acquire_timeout=5)
        await db.open()
        holder = asyncio.ensure_future(db.fetchval("SELECT 1 FROM pg_sleep(0.3)"))
        waiter = asyncio.ensure_future(db.fetchval("SELECT 2"))
        await asyncio.sleep(0)  # both started: one holds the only connection, one waits
        await db.close()
        assert await holder == 1 and await waiter == 2
        assert (db.size, db.idle) == (0, 0)
        with pytest.raises(ServiceUnavailable):
            await db.fetchval("SELECT 3")

    asyncio.run(main())
