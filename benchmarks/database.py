"""``python -m benchmarks.database``: the TechEmpower database types on PostgreSQL.

Starts a throw-away PostgreSQL server (``corkweb.testing.PostgresServer``), loads the standard
schema (``World``: 10,000 rows; ``Fortune``: 12), then measures each server on each type with
the same runner as ``python -m benchmarks``: a fresh server pinned to CPU 0, wrk pinned to
CPU 1, server CPU per request read from ``/proc`` for the server's own process tree. The
database's processes are not counted in that figure (they are another process tree); they are
pinned to CPU 1 with the load generator, so the server has CPU 0 to itself.

Every server runs the same SQL through asyncpg with a pool of the same size
(``--pool``, default 16); see ``benchmarks/apps/db.py``. The runs are interleaved
(every server once, then again), and the table gives the median of ``--runs``.

    python -m benchmarks.database                         # all servers, 3 runs, 5 s each
    python -m benchmarks.database --servers corkweb,blacksheep --workloads db,fortunes -d 3
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from benchmarks import report, runner, wrk
from benchmarks.apps import db
from benchmarks.servers import SERVERS, ServerFailed, missing
from benchmarks.workloads import DB_GOALS, DB_WORKLOADS

PEERS = ("corkweb", "socketify", "blacksheep", "starlette", "sanic")
# corkweb run another way (not peers: they never count as "best peer")
VARIANTS = {
    "executemany": "corkweb, updates by executemany",
    "asyncpg-pool": "corkweb on asyncpg's Pool",
    "pipelined": "corkweb, reads pipelined",
}
PG_SETTINGS = ("fsync=off, synchronous_commit=off, full_page_writes=off, "
               "shared_buffers=32MB, max_connections=100 (corkweb.testing.PostgresServer)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.database", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default=",".join(PEERS))
    ap.add_argument("--workloads", default=",".join(DB_WORKLOADS))
    ap.add_argument("-d", "--duration", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("-c", "--connections", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pool", type=int, default=16, help="connections per server pool (16)")
    ap.add_argument("--variants", default="executemany,asyncpg-pool,pipelined",
                    help="corkweb variants to add (BENCH_CORKWEB_DB in apps/corkweb_app.py): "
                    "executemany, asyncpg-pool, pipelined; '' for none")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    a.server_names = [s for s in a.servers.split(",") if s]
    a.workload_names = [w for w in a.workloads.split(",") if w]
    a.variant_names = [v for v in a.variants.split(",") if v]
    for v in a.variant_names:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v!r} (known: {', '.join(VARIANTS)})")
    for name in a.server_names:
        if name not in SERVERS:
            raise SystemExit(f"unknown server {name!r} (known: {', '.join(SERVERS)})")
    for name in a.workload_names:
        if name not in DB_WORKLOADS:
            raise SystemExit(f"unknown workload {name!r} (known: {', '.join(DB_WORKLOADS)})")
    return a


async def load_schema(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(db.SCHEMA)
        await conn.executemany("INSERT INTO fortune (id, message) VALUES ($1, $2)", db.FORTUNES)
        await conn.execute("VACUUM ANALYZE world")
        await conn.execute("VACUUM ANALYZE fortune")
    finally:
        await conn.close()


def pin_postgres(server, cpu: int) -> None:
    """Pin the postmaster (its future backends inherit it) and its current children."""
    pid = int((server.data / "postmaster.pid").read_text().split()[0])
    pids = [pid] + [int(c) for c in
                    Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        try:
            os.sched_setaffinity(p, {cpu})
        except ProcessLookupError:
            pass  # a child that ended since the listing


def main(argv: list[str] | None = None) -> int:
    from corkweb.testing import PostgresServer

    a = parse_args(argv)
    if not wrk.available():
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    pinned = not a.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    opts = runner.Options(duration=a.duration, warmup=a.warmup, connections=a.connections,
                          use_wrk=True, pinned=pinned)
    runner.prepare(opts)
    servers = []  # (key in the results, label, server, environment)
    for name in a.server_names:
        why = missing(SERVERS[name])
        if why:
            print(f"{SERVERS[name].label}: SKIPPED, it cannot be imported here: {why}")
            continue
        servers.append((name, SERVERS[name].label, SERVERS[name], {}))
        if name == "corkweb":
            servers += [(f"corkweb-{v}", VARIANTS[v], SERVERS[name], {"BENCH_CORKWEB_DB": v})
                        for v in a.variant_names]
    results: dict = {"environment": report.environment(), "servers": {}, "runs": a.runs,
                     "labels": {key: label for key, label, _, _ in servers}}
    with PostgresServer() as pg:
        if pinned:
            pin_postgres(pg, runner.CLIENT_CPU)
        dsn = pg.create_database("bench")
        asyncio.run(load_schema(dsn))
        os.environ["BENCH_DATABASE_URL"] = dsn
        os.environ["BENCH_POOL_SIZE"] = str(a.pool)
        results["environment"]["postgresql"] = pg.version
        results["environment"]["postgresql_settings"] = PG_SETTINGS
        results["options"] = {"duration": a.duration, "warmup": a.warmup,
                              "connections": a.connections, "pool": a.pool, "pinned": pinned,
                              "postgres_cpu": runner.CLIENT_CPU if pinned else None}
        started = time.monotonic()
        for run in range(a.runs):
            for key, label, server, env in servers:
                entry = results["servers"].setdefault(key, {})
                os.environ.pop("BENCH_CORKWEB_DB", None)
                os.environ.update(env)  # the server process inherits it
                for name in a.workload_names:
                    try:
                        r = runner.measure_workload(server, DB_WORKLOADS[name], opts)
                    except ServerFailed as e:
                        r = {"error": f"server failed to start: {e}"}
                    entry.setdefault(name, []).append(r)
                    summary = (f"{r['cpu_us']:7.1f} µs CPU  {r['rps']:>8,.0f} /s  "
                               f"(server {r['server_cpu_percent']:.0f} % busy)"
                               if "cpu_us" in r else "FAILED: " + r.get("error", "")[:300])
                    if r.get("non_2xx") or r.get("socket_errors"):
                        summary += (f"  [non-2xx {r.get('non_2xx')}, "
                                    f"errors {r.get('socket_errors')}]")
                    print(f"run {run + 1}/{a.runs}  {label:<26} {name:<9} {summary}",
                          flush=True)
        results["seconds"] = time.monotonic() - started
    os.environ.pop("BENCH_DATABASE_URL", None)
    a.output.mkdir(parents=True, exist_ok=True)
    (a.output / "database.json").write_text(json.dumps(results, indent=1, default=str))
    text = render(results, a.workload_names, [key for key, _, _, _ in servers], argv)
    (a.output / "database.md").write_text(text)
    print(text)
    shutil.rmtree(opts.workdir, ignore_errors=True)
    return 0


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if key in r and not r.get("error")]
    return statistics.median(values) if values else None


def render(results: dict, workloads: list[str], names: list[str], argv) -> str:
    env = results["environment"]
    o = results["options"]
    label = results["labels"]
    lines = [
        "# corkweb benchmark: TechEmpower database types on PostgreSQL",
        "",
        f"{env['date']} · {env['cpu']} ({env['cpus']} CPUs) · Python {env['python']} · "
        f"{env['postgresql']} ({env['postgresql_settings']}) · wrk -t1 -c{o['connections']}, "
        f"{o['duration']:g} s per run after {o['warmup']:g} s of warm-up · server pinned to "
        f"CPU 0, wrk and PostgreSQL to CPU 1 · asyncpg pool of {o['pool']} in every server · "
        f"median of {results['runs']} interleaved runs.",
        "",
        "Command: `python -m benchmarks.database " + " ".join(argv or sys.argv[1:]) + "`",
        "",
        "Server CPU counts the server's own processes only, never PostgreSQL's. The ratio "
        "compares corkweb (corkweb.Postgres as docs/databases.md recommends: the same reads "
        "as the peers, one statement at a time; the updates written in one `UPDATE ... FROM "
        "(VALUES ...)` where the peers use `executemany`, as their own TechEmpower apps do) "
        "with the best peer; the variants are there to show where the time goes: corkweb "
        "with `executemany` (the peers' code throughout), corkweb on asyncpg's Pool (as the "
        "peers use it), and corkweb with the independent reads of a request pipelined "
        "(`conn.fetchmany`, one round trip; the peers could do the same).",
        "",
        "## Server CPU µs per request (lower is better)",
        "",
        "| workload | " + " | ".join(label[n] for n in names)
        + " | corkweb ÷ best peer | goal | all runs (corkweb ÷ best peer) |",
        "|---|" + "---|" * (len(names) + 3),
    ]
    for w in workloads:
        med = {n: _median(results["servers"][n].get(w, []), "cpu_us") for n in names}
        cells = [f"{med[n]:.1f}" if med[n] is not None else "failed" for n in names]
        peers = {n: v for n, v in med.items()
                 if not n.startswith("corkweb") and v is not None}
        ratio = goal = per_run = "—"
        if "corkweb" in med and med["corkweb"] is not None and peers:
            best = min(peers, key=peers.__getitem__)
            value = med["corkweb"] / peers[best]
            ratio = f"{value:.2f} ({label[best]})"
            goal = f"≤ {DB_GOALS[w]} ({'met' if value <= DB_GOALS[w] else '**not met**'})"
            runs = []
            for i in range(results["runs"]):
                try:
                    mine = results["servers"]["corkweb"][w][i]["cpu_us"]
                    best_i = min(results["servers"][n][w][i]["cpu_us"] for n in peers)
                except (KeyError, IndexError):
                    continue
                runs.append(f"{mine / best_i:.2f}")
            per_run = ", ".join(runs)
        lines.append(f"| {DB_WORKLOADS[w].title} | " + " | ".join(cells)
                     + f" | {ratio} | {goal} | {per_run} |")
    lines += ["", f"## Requests per second at {o['connections']} connections "
              "(higher is better; PostgreSQL shares the two CPUs)", "",
              "| workload | " + " | ".join(label[n] for n in names) + " |",
              "|---|" + "---|" * len(names)]
    for w in workloads:
        med = {n: _median(results["servers"][n].get(w, []), "rps") for n in names}
        lines.append(f"| {DB_WORKLOADS[w].title} | " + " | ".join(
            f"{med[n]:,.0f}" if med[n] is not None else "failed" for n in names) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
