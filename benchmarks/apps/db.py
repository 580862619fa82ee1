"""What every benchmark app shares for the TechEmpower database test types.

The four types (single query ``/db``, multiple queries ``/queries?queries=N``, fortunes
``/fortunes``, updates ``/updates?queries=N``) follow TechEmpower's rules: ``World`` has
10,000 rows of ``(id, randomNumber)``; each query reads one row by a random id; the count
``N`` is clamped to 1..500 (a missing or non-numeric one means 1); updates read each row
individually, give it a new random number and may write them in one batch; fortunes reads all
12 rows of ``Fortune``, adds one at request time, sorts by message and renders an escaped HTML
table. Every app runs this same SQL through asyncpg; only the framework around it differs.

Only the standard library is imported here (asyncpg is imported by the apps that use it).
"""
from __future__ import annotations

import os
from functools import cache
from random import randint, sample
from typing import Any

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL")  # set by benchmarks/database.py
POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "16"))  # the same for every server

READ_ROW = 'SELECT "randomnumber" FROM "world" WHERE id = $1'
WRITE_ROW = 'UPDATE "world" SET "randomnumber" = $1 WHERE id = $2'
READ_FORTUNES = 'SELECT * FROM "fortune"'
ADDITIONAL_FORTUNE = (0, "Additional fortune added at request time.")
FORTUNES_TEMPLATE = "fortunes.html"

WORLD_ROWS = 10_000
# TechEmpower's Fortune table: the test data every implementation serves.
FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. — Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "フレームワークのベンチマーク"),
]

SCHEMA = """
DROP TABLE IF EXISTS world;
DROP TABLE IF EXISTS fortune;
CREATE TABLE world (id integer NOT NULL PRIMARY KEY, randomnumber integer NOT NULL DEFAULT 0);
CREATE TABLE fortune (id integer NOT NULL PRIMARY KEY, message varchar(2048) NOT NULL);
INSERT INTO world (id, randomnumber)
    SELECT x, least(floor(random() * 10000 + 1), 10000) FROM generate_series(1, 10000) AS x;
"""


def query_count(text: str | None) -> int:
    """TechEmpower's rule for the ``queries`` parameter: an integer clamped to 1..500."""
    try:
        n = int(text) if text else 1
    except ValueError:
        return 1
    return 1 if n < 1 else 500 if n > 500 else n


def random_id() -> int:
    return randint(1, WORLD_ROWS)


def random_ids(n: int) -> list[int]:
    """``n`` distinct ids (distinct, so that a batch of updates never hits a row twice)."""
    return sample(range(1, WORLD_ROWS + 1), n)


async def update_worlds(conn: Any, ids: list[int]) -> list[dict]:
    """The updates test on one connection: read each row (as the rules ask), give each a new
    random number, write them all in one batch; returns the rows as answered. Every server's
    app calls this, so they all do the same database work."""
    worlds = []
    for i in ids:
        await conn.fetchval(READ_ROW, i)
        worlds.append({"id": i, "randomNumber": random_id()})
    await conn.executemany(WRITE_ROW, [(w["randomNumber"], w["id"]) for w in worlds])
    return worlds


@cache
def write_rows(n: int) -> str:
    """One UPDATE for ``n`` rows: ``(id, randomNumber)`` pairs as ``VALUES`` parameters (the
    batched update docs/databases.md recommends; one text per ``n``, prepared once)."""
    pairs = ", ".join(f"(${2 * k + 1}::int, ${2 * k + 2}::int)" for k in range(n))
    return (f'UPDATE "world" SET "randomnumber" = v.r FROM (VALUES {pairs}) AS v(id, r) '
            f'WHERE "world".id = v.id')


async def update_worlds_batched(conn: Any, ids: list[int]) -> list[dict]:
    """:func:`update_worlds` with the writes in one statement instead of ``executemany``: the
    same reads, the same rows written; the ids are sorted, so every plan locks them in the
    same order and two requests cannot deadlock."""
    worlds = []
    args: list[int] = []
    for i in ids:
        await conn.fetchval(READ_ROW, i)
        number = random_id()
        worlds.append({"id": i, "randomNumber": number})
        args += (i, number)
    await conn.execute(write_rows(len(ids)), *args)
    return worlds


def sorted_fortunes(rows: list) -> list:
    """The rows plus the request-time fortune, sorted by message."""
    fortunes = [tuple(r) for r in rows]
    fortunes.append(ADDITIONAL_FORTUNE)
    fortunes.sort(key=lambda f: f[1])
    return fortunes
