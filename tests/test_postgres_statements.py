"""corkweb.Postgres keeps each connection's reads prepared: same answers, never stale.

A statement text a connection has run before goes straight to the prepared statement kept for
it (asyncpg's statement-cache lookup and the layers around it skipped). These tests check the
answers are the same as asyncpg's, that a schema change or a session reset never leaves a stale
statement behind, and that nothing is kept when asyncpg's statement cache is off (PgBouncer).
"""

from __future__ import annotations

import asyncio

import pytest

from corkweb import ServiceUnavailable
from corkweb.postgres import Postgres

asyncpg = pytest.importorskip("asyncpg", reason="asyncpg not installed (pip install -e .[test])")

READ = "SELECT v FROM item WHERE id = $1"


async def open_db(dsn: str, **options) -> Postgres:
    setup = await asyncpg.connect(dsn)
    try:
        await setup.execute("DROP TABLE IF EXISTS item; "
                            "CREATE TABLE item (id int PRIMARY KEY, v text NOT NULL); "
                            "INSERT INTO item VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    finally:
        await setup.close()
    db = Postgres(None, dsn, min_size=1, max_size=1, **options)
    await db.open()
    return db


def test_reads_seen_before_run_their_kept_statement(pg_dsn) -> None:
    async def main():
        db = await open_db(pg_dsn)
        try:
            async with db.connection() as conn:
                assert await conn.fetchval(READ, 1) == "one"
                kept = conn.statements[READ]
                assert await conn.fetchval(READ, 2) == "two"
                assert await conn.fetchval(READ, 3, column=0) == "three"
                assert await conn.fetchval(READ, 4) is None
                assert conn.statements[READ] is kept
                rows = await conn.fetch("SELECT id, v FROM item WHERE id >= $1 ORDER BY id", 2)
                assert [tuple(r) for r in rows] == [(2, "two"), (3, "three")]
                rows = await conn.fetch("SELECT id, v FROM item WHERE id >= $1 ORDER BY id", 3)
                assert [tuple(r) for r in rows] == [(3, "three")]
                row = await conn.fetchrow("SELECT id, v FROM item WHERE id = $1", 2)
                assert tuple(row) == (2, "two")
                assert await conn.fetchrow("SELECT id, v FROM item WHERE id = $1", 9) is None
                update = "UPDATE item SET v = $1 WHERE id = $2"
                assert await conn.execute(update, "uno", 1) == "UPDATE 1"
                assert await conn.execute(update, "nada", 9) == "UPDATE 0"
                assert await conn.fetchval(READ, 1, timeout=5) == "uno"
                assert set(conn.statements) == {
                    READ, update, "SELECT id, v FROM item WHERE id >= $1 ORDER BY id",
                    "SELECT id, v FROM item WHERE id = $1"}
            # the pool's only connection, lent again: its statements are still there
            async with db.connection() as conn:
                assert conn.statements[READ] is kept
            assert await db.fetchval(READ, 2) == "two"
        finally:
            await db.close()

    asyncio.run(main())


def test_a_schema_change_prepares_the_statement_again(pg_dsn) -> None:
    async def main():
        db = await open_db(pg_dsn)
        try:
            async with db.connection() as conn:
                rows = await conn.fetch("SELECT * FROM item WHERE id = $1", 1)
                assert [tuple(r) for r in rows] == [(1, "one")]
                kept = conn.statements["SELECT * FROM item WHERE id = $1"]
                await conn.execute("ALTER TABLE item ADD COLUMN extra int NOT NULL DEFAULT 7")
                # the server refuses the old plan (its result type changed): asyncpg's own
                # path would prepare again and retry, and so does the kept statement
                rows = await conn.fetch("SELECT * FROM item WHERE id = $1", 1)
                assert [tuple(r) for r in rows] == [(1, "one", 7)]
                assert conn.statements.get("SELECT * FROM item WHERE id = $1") is not kept
                # inside a transaction, the failed statement has failed the transaction:
                # the error goes to the app, as with asyncpg's own statement cache
                await conn.fetchrow("SELECT * FROM item WHERE id = $1", 2)
                transaction = conn.transaction()
                await transaction.start()
                await conn.execute("ALTER TABLE item DROP COLUMN extra")
                with pytest.raises(asyncpg.InvalidCachedStatementError):
                    await conn.fetchrow("SELECT * FROM item WHERE id = $1", 2)
                await transaction.rollback()
                # after the rollback the column is back, and the statement prepared again
                row = await conn.fetchrow("SELECT * FROM item WHERE id = $1", 2)
                assert tuple(row) == (2, "two", 7)
        finally:
            await db.close()

    asyncio.run(main())


def test_discard_and_deallocate_drop_the_kept_statements(pg_dsn) -> None:
    async def main():
        db = await open_db(pg_dsn)
        try:
            for wipe in ("DEALLOCATE ALL", "DISCARD ALL"):
                async with db.connection() as conn:
                    assert await conn.fetchval(READ, 1) == "one"
                    assert READ in conn.statements
                    await conn.execute(wipe)  # the server forgets every prepared statement
                    assert conn.statements == {}
                    assert await conn.fetchval(READ, 2) == "two"
                async with db.connection() as conn:  # reset on release: nothing kept
                    assert conn.statements == {}
                    assert await conn.fetchval(READ, 3) == "three"
        finally:
            await db.close()

    asyncio.run(main())


def test_a_session_reset_or_new_codec_drops_the_kept_statements(pg_dsn) -> None:
    async def main():
        db = await open_db(pg_dsn)
        try:
            async with db.connection() as conn:
                assert await conn.fetchval(READ, 1) == "one"
                await conn.set_type_codec("text", encoder=str, decoder=str.upper,
                                          schema="pg_catalog", format="text")
                assert conn.statements == {}
                assert await conn.fetchval(READ, 1) == "ONE"  # the new codec decodes it
                await conn.reset()
                assert conn.statements == {}
        finally:
            await db.close()

    asyncio.run(main())


def test_nothing_is_kept_when_asyncpgs_statement_cache_is_off(pg_dsn) -> None:
    async def main():
        db = await open_db(pg_dsn, statement_cache_size=0)
        try:
            async with db.connection() as conn:
                for i, v in ((1, "one"), (2, "two"), (1, "one")):
                    assert await conn.fetchval(READ, i) == v
                assert conn.statements == {}
                # and no named statement on the server either (PgBouncer would lose it)
                assert await conn.fetchval("SELECT count(*) FROM pg_prepared_statements") == 0
        finally:
            await db.close()

    asyncio.run(main())


def test_the_statements_kept_are_bounded_by_the_statement_cache_size(pg_dsn) -> None:
    async def main():
        db = await open_db(pg_dsn, statement_cache_size=2)
        try:
            async with db.connection() as conn:
                texts = [f"SELECT v FROM item WHERE id = $1 AND {n} = {n}" for n in range(5)]
                for text in texts:
                    assert await conn.fetchval(text, 2) == "two"
                    assert await conn.fetchval(text, 3) == "three"
                assert set(conn.statements) == set(texts[:2])
        finally:
            await db.close()

    asyncio.run(main())


def test_a_statement_that_leaves_session_state_is_never_kept(pg_dsn) -> None:
    async def main():
        db = await open_db(pg_dsn)
        try:
            async with db.connection() as conn:
                value = "SELECT set_config('app.user', $1, false)"
                assert await conn.fetchval(value, "ann") == "ann"
                assert await conn.fetchval(value, "bob") == "bob"
                assert value not in conn.statements
            assert await db.fetchval("SELECT current_setting('app.user', true)") in ("", None)
        finally:
            await db.close()

    asyncio.run(main())


def test_the_benchmarks_batched_update_writes_every_row(pg_dsn) -> None:
    """The one-statement update the docs recommend (and the benchmark app runs)."""
    from benchmarks.apps import db as bench

    async def main():
        setup = await asyncpg.connect(pg_dsn)
        try:
            await setup.execute(bench.SCHEMA)
        finally:
            await setup.close()
        db = Postgres(None, pg_dsn, min_size=1, max_size=1)
        await db.open()
        try:
            for n in (1, 20, 20):
                ids = sorted(bench.random_ids(n))
                async with db.connection() as conn:
                    worlds = await bench.update_worlds_batched(conn, ids)
                    assert [w["id"] for w in worlds] == ids
                    rows = await conn.fetch('SELECT id, randomnumber FROM world '
                                            'WHERE id = ANY($1::int[]) ORDER BY id', ids)
                    assert [(r[0], r[1]) for r in rows] == [
                        (w["id"], w["randomNumber"]) for w in worlds]
        finally:
            await db.close()

    asyncio.run(main())


SLEEP = "SELECT pg_sleep($1)"


async def sleeping(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                                   " AND query = $1", SLEEP)
    finally:
        await conn.close()


def test_a_kept_statement_past_query_timeout_is_503_and_cancelled(pg_dsn) -> None:
    """Kept statements are bounded by the pool's watch (no asyncpg timer per statement):
    past query_timeout the connection is dropped, the request gets its 503, the server
    cancels the query and the pool opens a new connection."""
    async def main():
        db = await open_db(pg_dsn, query_timeout=0.4)
        try:
            async with db.connection() as conn:
                await conn.fetchval(SLEEP, 0.0)
                assert SLEEP in conn.statements
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(ServiceUnavailable, match="timed out after 0.4 s"):
                async with db.connection() as conn:
                    await conn.fetchval(SLEEP, 60.0)
            assert 0.4 <= loop.time() - started < 3.0
            deadline = loop.time() + 10
            while await sleeping(pg_dsn):
                assert loop.time() < deadline, "the server still runs the statement"
                await asyncio.sleep(0.05)
            assert await db.fetchval(READ, 1) == "one"  # a new connection
            # an explicit timeout is asyncpg's, as before
            with pytest.raises(ServiceUnavailable, match="timed out"):
                async with db.connection() as conn:
                    await conn.fetchval(SLEEP, 60.0, timeout=0.2)
            assert await db.fetchval(READ, 2) == "two"
        finally:
            await db.close()

    asyncio.run(main())


def test_the_watch_bounds_each_statement_not_the_lease(pg_dsn) -> None:
    async def main():
        db = await open_db(pg_dsn, query_timeout=0.4)
        try:
            async with db.connection() as conn:
                for _ in range(8):  # 0.8 s on one connection, 0.1 s per statement
                    await conn.fetchval(SLEEP, 0.1)
                assert not conn.timed_out and not conn.is_closed()
        finally:
            await db.close()

    asyncio.run(main())


def test_statements_outside_the_watch_keep_asyncpgs_timeout(pg_dsn) -> None:
    async def main():
        db = await open_db(pg_dsn, query_timeout=0.3)
        try:
            for run in (
                lambda conn: conn.execute("SELECT pg_sleep(60)"),  # no arguments: not kept
                lambda conn: conn.executemany(SLEEP, [(60.0,)]),
                lambda conn: conn.fetchmany(SLEEP, [(60.0,)]),
            ):
                with pytest.raises(ServiceUnavailable, match="timed out"):
                    async with db.connection() as conn:
                        await run(conn)
            assert await db.fetchval(READ, 3) == "three"
        finally:
            await db.close()

    asyncio.run(main())
