"""Typed POST: server CPU per validated request, corkweb's typed handler against its classic
equivalent and the typed frameworks (DESIGN.md §5).

``POST /items`` carries a ~150-byte JSON body (``apps/typed_common.py``) that each server
validates into a 4-field structure and answers 201 with a 3-field JSON object:

* corkweb typed: ``async def create(item: ItemIn) -> ItemOut`` (msgspec);
* corkweb classic: ``await res.get_json()`` + ``res.cork_end`` (no validation);
* Litestar on uvicorn (msgspec), FastAPI on uvicorn (pydantic), BlackSheep on Granian
  (pydantic through ``FromJSON``).

Each server runs alone, pinned to CPU 0; ``wrk -t1 -c64`` on CPU 1 posts the body; the
server's CPU time (user + system of its process tree, from ``/proc``) over the timed run is
divided by the requests answered. Before timing, one valid and one invalid body check the
answers (201 with the right JSON; 4xx for a constraint broken, except for the classic handler,
which does not validate). ``--repeat N`` gives medians and the min-max spread; the goals are
ratios within one run: typed ≤ 1.3× classic and ≤ 0.35× the best peer.

    python -m benchmarks.typed                      # every target, 3 repeats of 5 s
    python -m benchmarks.typed --repeat 5 -d 5 --targets corkweb-typed,corkweb-classic
    python -m benchmarks.typed --instructions       # instructions per request (callgrind)
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import instructions as instructions_bench
from benchmarks import procstat, wrk
from benchmarks.apps.typed_common import ANSWER, BODY
from benchmarks.servers import HOST, RunningServer, Server, free_port, missing, pin

POST_LUA = """\
wrk.method = "POST"
wrk.body = os.getenv("BENCH_TYPED_BODY")
wrk.headers["Content-Type"] = "application/json"
"""
GOAL_VS_CLASSIC = 1.3
GOAL_VS_PEER = 0.35


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    server: Server
    path: str
    validates: bool = True


TARGETS = {t.name: t for t in (
    Target("corkweb-typed", "corkweb typed", Server("typed_corkweb", "corkweb", ("corkweb",)),
           "/items"),
    Target("corkweb-typed-sync", "corkweb typed, def",
           Server("typed_corkweb", "corkweb", ("corkweb",)), "/sync/items"),
    Target("corkweb-classic", "corkweb classic",
           Server("typed_corkweb", "corkweb", ("corkweb",)), "/classic/items", False),
    Target("litestar", "Litestar on uvicorn",
           Server("typed_litestar", "Litestar", ("litestar", "uvicorn", "msgspec")), "/items"),
    Target("fastapi", "FastAPI on uvicorn",
           Server("typed_fastapi", "FastAPI", ("fastapi", "uvicorn", "pydantic")), "/items"),
    Target("blacksheep", "BlackSheep on Granian",
           Server("typed_blacksheep", "BlackSheep", ("blacksheep", "granian", "pydantic")),
           "/items"),
)}
PEERS = ("litestar", "fastapi", "blacksheep")


def _post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def check(target: Target, port: int) -> str | None:
    """What is wrong with the target's answers, or None."""
    status, data = _post(port, target.path, BODY)
    if status != 201:
        return f"status {status} for a valid body: {data[:200]!r}"
    if json.loads(data) != ANSWER:
        return f"answer {data[:200]!r}, expected {ANSWER}"
    if target.validates:
        bad = json.loads(BODY)
        bad["stock"] = -1
        status, data = _post(port, target.path, json.dumps(bad).encode())
        if not 400 <= status < 500:
            return f"status {status} for a body breaking the constraint: {data[:200]!r}"
    return None


def measure(target: Target, seconds: float, warmup: float, connections: int,
            workdir: Path) -> dict:
    """One timed run: requests/s and server CPU µs per request."""
    with RunningServer(target.server, cpu=0, static_dir=workdir) as srv:
        srv.wait_ready()
        problem = check(target, srv.port)
        if problem:
            raise RuntimeError(f"{target.label}: wrong answer: {problem}")
        script = workdir / "post.lua"
        env = dict(os.environ, BENCH_TYPED_BODY=BODY.decode())
        url = f"http://{HOST}:{srv.port}{target.path}"
        wrk.run(url, warmup, connections, pin=pin(1), script=script, env=env)
        before = procstat.cpu_seconds(srv.pid)
        result = wrk.run(url, seconds, connections, pin=pin(1), script=script, env=env)
        used = procstat.cpu_seconds(srv.pid) - before
        if not result["requests"]:
            raise RuntimeError(f"{target.label}: no request completed: {result.get('output')}")
        if result["non_2xx"] or result["socket_errors"]:
            raise RuntimeError(f"{target.label}: errors under load: {result['non_2xx']} "
                               f"non-2xx, socket errors {result['socket_errors']}")
        return {"rps": result["rps"], "cpu_us": used * 1e6 / result["requests"],
                "server_cpu_percent": used / result["seconds"] * 100}


# -- instructions per request under callgrind ---------------------------------------------


def _drive_posts(port: int, path: str, requests: int, connections: int) -> int:
    request = (f"POST {path} HTTP/1.1\r\nHost: bench\r\ncontent-type: application/json\r\n"
               f"content-length: {len(BODY)}\r\n\r\n").encode() + BODY
    answered = re.compile(rb"HTTP/1\.1 201 .*?\r\n\r\n.*\}", re.S)
    return instructions_bench.drive(port, request, 1, requests, connections,
                                    lambda buf: answered.search(buf) is not None, timeout=120)


def _accepts(port: int) -> bool:
    socket.create_connection((HOST, port), timeout=1).close()
    return True


def instructions(target: Target, requests: int, connections: int) -> float:
    """Instructions the server executes per request (callgrind, counters zeroed after a
    warm-up): immune to the other load on the machine."""
    port = free_port()
    return instructions_bench.callgrind(
        [sys.executable, "-m", target.server.module, str(port)], port,
        lambda count: _drive_posts(port, target.path, count, connections),
        max(100, requests // 5), requests, ready=lambda: _accepts(port),
        children=True, ready_timeout=180, ready_poll=0.3)


def _table(rows: dict[str, list[dict]], key: str, unit: str) -> list[str]:
    lines = [f"| target | {unit} (median) | min-max | requests/s (median) |",
             "|---|---|---|---|"]
    for name, runs in rows.items():
        values = [r[key] for r in runs]
        rps = statistics.median(r["rps"] for r in runs)
        lines.append(f"| {TARGETS[name].label} | {statistics.median(values):.1f} | "
                     f"{min(values):.1f}-{max(values):.1f} | {rps:,.0f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.typed",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("-d", "--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions per request under callgrind instead")
    ap.add_argument("--requests", type=int, default=2000, help="with --instructions")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    a = ap.parse_args(argv)
    names = [n for n in a.targets.split(",") if n]
    for n in names:
        if n not in TARGETS:
            raise SystemExit(f"unknown target {n} (known: {', '.join(TARGETS)})")
    available = []
    for n in names:
        why = missing(TARGETS[n].server)
        if why:
            print(f"{TARGETS[n].label}: skipped ({why})")
        else:
            available.append(n)
    if a.instructions:
        if not shutil.which("valgrind"):
            raise SystemExit("valgrind is not installed (apt-get install valgrind)")
        counts = {}
        for n in available:
            counts[n] = instructions(TARGETS[n], a.requests, 8)
            print(f"{TARGETS[n].label:24} {counts[n]:12,.0f} instructions per request",
                  flush=True)
        _ratios({n: [{"v": v}] for n, v in counts.items()}, "v")
        return 0
    if not wrk.available():
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    workdir = Path(tempfile.mkdtemp(prefix="corkweb-bench-typed-"))
    (workdir / "post.lua").write_text(POST_LUA)
    runs: dict[str, list[dict]] = {n: [] for n in available}
    # Targets interleaved within each repeat, so slow drifts of the machine hit all alike.
    for i in range(a.repeat):
        for n in available:
            r = measure(TARGETS[n], a.duration, a.warmup, a.connections, workdir)
            runs[n].append(r)
            print(f"run {i + 1}: {TARGETS[n].label:24} {r['cpu_us']:7.1f} µs CPU/request "
                  f"{r['rps']:10,.0f} req/s  server CPU {r['server_cpu_percent']:.0f} %",
                  flush=True)
    print()
    print("\n".join(_table(runs, "cpu_us", "server CPU µs/request")))
    _ratios(runs, "cpu_us")
    if a.json:
        a.json.write_text(json.dumps(runs, indent=2))
    return 0


def _ratios(runs: dict[str, list[dict]], key: str) -> None:
    med = {n: statistics.median(r[key] for r in rs) for n, rs in runs.items() if rs}
    typed = med.get("corkweb-typed")
    if typed is None:
        return
    if "corkweb-classic" in med:
        ratio = typed / med["corkweb-classic"]
        print(f"\ntyped / classic: {ratio:.2f} (goal ≤ {GOAL_VS_CLASSIC}: "
              f"{'met' if ratio <= GOAL_VS_CLASSIC else 'NOT met'})")
    peers = {n: v for n, v in med.items() if n in PEERS}
    if peers:
        best = min(peers, key=lambda n: peers[n])
        ratio = typed / peers[best]
        print(f"typed / best peer ({TARGETS[best].label}): {ratio:.2f} (goal ≤ {GOAL_VS_PEER}: "
              f"{'met' if ratio <= GOAL_VS_PEER else 'NOT met'})")
        for n, v in sorted(peers.items(), key=lambda item: item[1]):
            print(f"typed / {TARGETS[n].label}: {typed / v:.2f}")


if __name__ == "__main__":
    sys.exit(main())
