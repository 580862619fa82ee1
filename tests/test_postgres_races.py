"""corkweb.postgres under interleavings that could strand a request: every acquire ends.

Each test drives the pool on the real throw-away PostgreSQL cluster with many more requests
than connections, interrupts some of them (cancelled waiters and holders, connections
terminated by the server, requests arriving while the pool opens) and checks that every
request finishes within a bound, and that the pool's count matches what it holds afterwards.
A hang shows up as the outer ``wait_for`` expiring (``acquire_timeout`` is set far above it, so
a stranded waiter cannot hide behind a 503).
"""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from corkweb import App, ServiceUnavailable
from corkweb.postgres import Postgres
from corkweb.testing import TestClient

asyncpg = pytest.importorskip("asyncpg", reason="asyncpg not installed (pip install -e .[test])")

BOUND = 8.0  # seconds any of these scenarios may take; acquire_timeout is above it


def assert_settled(db: Postgres) -> None:
    """Nothing lent, nothing waiting, and the count is what the pool holds."""
    assert db.size == db.idle, repr(db)
    assert db.size <= db.max_size, repr(db)
    assert not any(not w.done() for w in db._waiters), repr(db)


def test_requests_arriving_while_the_pool_opens_get_its_connections(pg_dsn) -> None:
    # min_size == max_size: requests that come while ``open`` connects have to wait for the
    # connections it opens, which must be handed to them, not only left idle.
    async def main():
        db = Postgres(None, pg_dsn, min_size=2, max_size=2, acquire_timeout=30)
        opening = asyncio.ensure_future(db.open())
        await asyncio.sleep(0)  # open has counted its connections and is connecting
        results = await asyncio.wait_for(
            asyncio.gather(*(db.fetchval("SELECT $1::int", i) for i in range(64))), BOUND)
        await opening
        assert results == list(range(64))
        assert_settled(db)
        await db.close()

    asyncio.run(main())


def test_64_requests_on_a_pool_of_2_right_after_start(pg_dsn) -> None:
    async def main():
        db = Postgres(None, pg_dsn, min_size=0, max_size=2, acquire_timeout=30)
        await db.open()
        results = await asyncio.wait_for(
            asyncio.gather(*(db.fetchval("SELECT $1::int", i) for i in range(64))), BOUND)
        assert results == list(range(64))
        assert db.size == 2
        assert_settled(db)
        await db.close()

    asyncio.run(main())


def test_cancelled_waiters_and_holders_strand_nobody(pg_dsn) -> None:
    # Clients that disconnect: their request tasks are cancelled while waiting for a
    # connection, while connecting, mid-query, or just after a connection was handed to them.
    async def main():
        db = Postgres(None, pg_dsn, min_size=0, max_size=2, acquire_timeout=30)
        await db.open()
        rng = random.Random(7)
        for _ in range(5):
            tasks = [asyncio.ensure_future(db.fetchval("SELECT pg_sleep(0.01)::text || $1::int", i))
                     for i in range(64)]
            for _ in range(rng.randint(0, 5)):
                await asyncio.sleep(0 if rng.random() < 0.5 else 0.005)
                for task in rng.sample(tasks, 6):
                    task.cancel()
            done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                          BOUND)
            assert all(isinstance(r, (str, asyncio.CancelledError)) for r in done), done
            # the next burst is served in full (interrupted connections were reset or dropped)
            after = await asyncio.wait_for(
                asyncio.gather(*(db.fetchval("SELECT $1::int", i) for i in range(64))), BOUND)
            assert after == list(range(64))
        await asyncio.wait_for(asyncio.gather(*db._background, return_exceptions=True), BOUND)
        assert_settled(db)
        await db.close()

    asyncio.run(main())


def test_connections_terminated_mid_burst_end_every_request(pg_dsn) -> None:
    async def main():
        db = Postgres(None, pg_dsn, min_size=2, max_size=2, acquire_timeout=30,
                      server_settings={"application_name": "race-victim"})
        await db.open()
        admin = await asyncpg.connect(pg_dsn)
        try:
            for _ in range(16):
                tasks = [asyncio.ensure_future(
                    db.fetchval("SELECT pg_sleep(0.005)::text || $1::int", i)) for i in range(64)]
                await asyncio.sleep(0.02)
                await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE application_name = 'race-victim'")
                done = await asyncio.wait_for(
                    asyncio.gather(*tasks, return_exceptions=True), BOUND)
                # answered or a 503 naming the lost database connection; nothing else
                assert all(isinstance(r, (str, ServiceUnavailable)) for r in done), [
                    repr(r) for r in done if not isinstance(r, str)]
                assert any(isinstance(r, str) for r in done)
                after = await asyncio.wait_for(
                    asyncio.gather(*(db.fetchval("SELECT $1::int", i) for i in range(16))),
                    BOUND)
                assert after == list(range(16))
                assert_settled(db)
        finally:
            await admin.close()
        await db.close()

    asyncio.run(main())


def test_clients_disconnecting_while_waiting_leave_the_pool_whole(pg_dsn) -> None:
    app = App(templates=None)
    db = Postgres(app, pg_dsn, min_size=2, max_size=2, acquire_timeout=30)

    @app.get("/slow")
    async def slow(res, req):
        res.end({"v": await db.fetchval("SELECT pg_sleep(0.05)::text")})

    @app.get("/one")
    async def one(res, req):
        res.end({"one": await db.fetchval("SELECT 1")})

    with TestClient(app) as client:
        host, port = client.server.host, client.server.port
        # 32 clients send a request and hang up at once: their requests wait for one of the
        # two connections (or hold one) when the server sees them go.
        for _ in range(32):
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            s.close()

        async def burst():
            async with client.async_client() as http:
                return await asyncio.wait_for(
                    asyncio.gather(*(http.get("/one", timeout=BOUND) for _ in range(64))),
                    BOUND)

        assert [r.status_code for r in asyncio.run(burst())] == [200] * 64


def test_close_is_not_held_up_by_waiters_that_left(pg_dsn) -> None:
    # A waiter that timed out or was cancelled is gone: once every connection is back,
    # close must not wait ``acquire_timeout`` more for it.
    async def main():
        db = Postgres(None, pg_dsn, min_size=1, max_size=1, acquire_timeout=3)
        await db.open()
        held = await db.acquire()
        waiter = asyncio.ensure_future(db.acquire())
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await db.release(held)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(db.close(), BOUND)
        assert loop.time() - started < 1.0
        assert db.size == 0

    asyncio.run(main())
