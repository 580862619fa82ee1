"""``python -m benchmarks.pool_cost``: where a one-query request's database time goes.

Client CPU per ``acquire -> fetchval -> release`` cycle, one cycle at a time (no concurrency,
so every figure is the cost of the code path, not of waiting), against a throw-away PostgreSQL
(``corkweb.testing.PostgresServer``; its own CPU is not counted), for:

* a connection held for the whole run (no pool: the floor);
* asyncpg's ``Pool`` as documented (``async with pool.acquire()``), which sends a reset query
  on every release;
* asyncpg's ``Pool`` with a ``reset`` that does nothing (what the reset query costs; unsafe:
  session state would leak between requests);
* ``corkweb.Postgres`` (``db.fetchval``), which resets only a connection that may carry state.

    python -m benchmarks.pool_cost [--cycles 5000] [--repeat 5]

Prints the median of ``--repeat`` runs for each, in µs of this process's CPU per cycle.
"""
from __future__ import annotations

import argparse
import statistics
import time

QUERY = "SELECT 1 + $1::int"


async def measure(cycle, cycles: int) -> float:
    for _ in range(200):  # warm up: statement caches, code paths
        await cycle()
    started = time.process_time()
    for _ in range(cycles):
        await cycle()
    return (time.process_time() - started) / cycles * 1e6


async def main_async(dsn: str, cycles: int, repeat: int) -> dict[str, float]:
    import asyncpg

    from corkweb import Postgres

    held = await asyncpg.connect(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)

    async def no_reset(conn) -> None:
        return None

    unsafe = await asyncpg.create_pool(dsn, min_size=1, max_size=1, reset=no_reset)
    db = Postgres(None, dsn, min_size=1, max_size=1)
    await db.open()

    async def bare():
        return await held.fetchval(QUERY, 1)

    async def asyncpg_pool():
        async with pool.acquire() as conn:
            return await conn.fetchval(QUERY, 1)

    async def asyncpg_pool_no_reset():
        async with unsafe.acquire() as conn:
            return await conn.fetchval(QUERY, 1)

    async def corkweb_postgres():
        return await db.fetchval(QUERY, 1)

    cases = {"held connection (floor)": bare, "asyncpg Pool": asyncpg_pool,
             "asyncpg Pool, no reset (unsafe)": asyncpg_pool_no_reset,
             "corkweb.Postgres": corkweb_postgres}
    runs: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for _ in range(repeat):  # interleaved, so that a noisy moment hits every case
            for name, cycle in cases.items():
                runs[name].append(await measure(cycle, cycles))
    finally:
        await held.close()
        await pool.close()
        await unsafe.close()
        await db.close()
    return {name: statistics.median(values) for name, values in runs.items()}


def main(argv: list[str] | None = None) -> int:
    import uvloop

    from corkweb.testing import PostgresServer

    ap = argparse.ArgumentParser(prog="python -m benchmarks.pool_cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    with PostgresServer() as pg:
        figures = uvloop.run(main_async(pg.dsn(), a.cycles, a.repeat))
        print(f"{pg.version}; {a.cycles} cycles x {a.repeat} runs, median, client CPU only")
    floor = figures["held connection (floor)"]
    for name, us in figures.items():
        print(f"{name:<34} {us:6.1f} µs per cycle   (+{us - floor:5.1f} over the floor)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
