"""``python -m benchmarks.db_instructions``: instructions per request on the database types.

CPU time per request on a shared two-core machine moves with the load; instructions do not.
This runs a benchmark app under ``valgrind --tool=callgrind`` (``benchmarks/instructions.py``)
against a throw-away PostgreSQL loaded with the TechEmpower schema, warms it up, and counts
the server's instructions over ``--requests`` requests of each database type, divided by the
requests answered. Only the server's user-space instructions are counted: the kernel's work
for each round trip to the database (send, epoll, recv) and PostgreSQL's own are not, so this
is the part of a request the framework and the driver's Python side decide.

    python -m benchmarks.db_instructions --servers corkweb,sanic --workloads queries,updates
    python -m benchmarks.db_instructions --servers corkweb --variants ,asyncpg-pool
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys

from benchmarks.database import load_schema
from benchmarks.instructions import _request, callgrind, drive
from benchmarks.servers import SERVERS, free_port
from benchmarks.workloads import DB_WORKLOADS


def _complete(buf: bytes) -> bool:
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    raise ValueError(f"an answer without content-length: {head[:200]!r}")


def measure(server_name: str, workload: str, requests: int, connections: int,
            variant: str) -> float:
    server = SERVERS[server_name]
    port = free_port()
    path = DB_WORKLOADS[workload].path
    children = server_name == "blacksheep"  # Granian serves from a child process

    def run(count: int) -> int:
        return drive(port, _request(path), 1, count, connections, _complete)

    def ready() -> bool:
        try:
            return drive(port, _request("/db"), 1, 1, 1, _complete, timeout=5) == 1
        except OSError:
            return False

    env_before = os.environ.get("BENCH_CORKWEB_DB")
    if variant:
        os.environ["BENCH_CORKWEB_DB"] = variant
    try:
        return callgrind([sys.executable, "-m", server.module, str(port)], port, run,
                         max(100, requests // 5), requests, ready=ready, children=children)
    finally:
        os.environ.pop("BENCH_CORKWEB_DB", None)
        if env_before is not None:
            os.environ["BENCH_CORKWEB_DB"] = env_before


def main(argv: list[str] | None = None) -> int:
    from corkweb.testing import PostgresServer

    ap = argparse.ArgumentParser(prog="python -m benchmarks.db_instructions",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="corkweb")
    ap.add_argument("--workloads", default=",".join(DB_WORKLOADS))
    ap.add_argument("--variants", default="",
                    help="corkweb variants, comma-separated ('' is the default app; see "
                    "BENCH_CORKWEB_DB in benchmarks/apps/corkweb_app.py)")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--pool", type=int, default=4)
    a = ap.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    names = [n for n in a.servers.split(",") if n]
    for name in names:
        if name not in SERVERS:
            raise SystemExit(f"unknown server {name!r} (known: {', '.join(SERVERS)})")
    wls = [w for w in a.workloads.split(",") if w]
    for w in wls:
        if w not in DB_WORKLOADS:
            raise SystemExit(f"unknown workload {w!r} (known: {', '.join(DB_WORKLOADS)})")
    variants = a.variants.split(",")
    with PostgresServer() as pg:
        dsn = pg.create_database("bench")
        asyncio.run(load_schema(dsn))
        os.environ["BENCH_DATABASE_URL"] = dsn
        os.environ["BENCH_POOL_SIZE"] = str(a.pool)
        print(f"{pg.version}; {a.requests} requests over {a.connections} connections, "
              f"pool of {a.pool}; server user-space instructions only", flush=True)
        for name in names:
            for variant in (variants if name == "corkweb" else [""]):
                label = f"{name}-{variant}" if variant else name
                for w in wls:
                    value = measure(name, w, a.requests, a.connections, variant)
                    print(f"{label:<24} {w:<9} {value:12,.0f} instructions per request",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
