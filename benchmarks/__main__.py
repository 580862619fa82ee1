"""``python -m benchmarks``: run corkweb and its peers through the same workloads.

Examples (from the repository root)::

    python -m benchmarks                                  # everything but the 1M-request run
    python -m benchmarks --servers corkweb,starlette --workloads plaintext,json -d 3
    python -m benchmarks --million                        # add RSS over a million requests
    python -m benchmarks --list
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks import report, runner, wrk
from benchmarks.servers import SERVERS, ServerFailed, missing
from benchmarks.workloads import DEFAULT, EXTRA, HTTP_WORKLOADS

MEASURES = {
    "idle": runner.measure_idle,
    "conn-memory": runner.measure_conn_memory,
    "million": runner.measure_million,
}


def _names(text: str, known, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Server CPU per request, throughput, latency, idle CPU and memory of "
        "corkweb and its peers, side by side.",
    )
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma-separated (default: all)")
    ap.add_argument("--workloads", default=",".join(DEFAULT),
                    help="comma-separated (default: all but million)")
    ap.add_argument("-d", "--duration", type=float, default=5, help="seconds per timed load (5)")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of warm-up (1)")
    ap.add_argument("-c", "--connections", type=int, default=64, help="client connections (64)")
    ap.add_argument("--idle-seconds", type=float, default=10, help="idle CPU window (10)")
    ap.add_argument("--idle-connections", type=int, default=2000,
                    help="connections held open for the memory figure (2000)")
    ap.add_argument("--million", action="store_true",
                    help="also measure RSS over a million requests (takes minutes)")
    ap.add_argument("--million-requests", type=int, default=1_000_000)
    ap.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                    help="HTTP load generator: wrk if installed (auto), or the Python one")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and client to CPUs")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--list", action="store_true", help="list servers and workloads, then exit")
    a = ap.parse_args(argv)
    a.server_names = _names(a.servers, SERVERS, "server")
    a.workload_names = _names(a.workloads, [*HTTP_WORKLOADS, *EXTRA], "workload")
    if a.million and "million" not in a.workload_names:
        a.workload_names.append("million")
    return a


def _summary(w: str, r: dict) -> str:
    if "error" in r:
        return "FAILED: " + r["error"][:300]
    if w == "idle":
        return f"{r['cpu_percent']:.2f} % CPU"
    if w == "conn-memory":
        return f"{r['kib_per_connection']:.2f} KiB/connection ({r['opened']} held)"
    if w == "million":
        before, after = r["rss_before_mib"], r["rss_after_mib"]
        return f"{r['requests']:,} requests: RSS {before:.1f} → {after:.1f} MiB"
    lat = r.get("latency_ms", {})
    errs = ""
    if r["non_2xx"] or r["socket_errors"]:
        errs = f"  [non-2xx {r['non_2xx']}, socket errors {r['socket_errors']}]"
    p = f"  p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms" if "p50" in lat else ""
    server, client = r["server_cpu_percent"], r.get("client_cpu_percent", 0)
    busy = f"  (busy: server {server:.0f} %, client {client:.0f} %)"
    return f"{r['rps']:>10,.0f} /s{p}  {r['cpu_us']:7.1f} µs CPU each{busy}{errs}"


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.list:
        for s in SERVERS.values():
            print(f"server    {s.name:<12} {s.label}")
        for w in HTTP_WORKLOADS.values():
            print(f"workload  {w.name:<12} {w.method} {w.path}  ({w.title})")
        for name, text in EXTRA.items():
            print(f"workload  {name:<12} {text}")
        return 0
    use_wrk = a.loadgen == "wrk" or (a.loadgen == "auto" and wrk.available())
    if a.loadgen == "wrk" and not wrk.available():
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if not use_wrk:
        why = "as asked" if a.loadgen == "python" else "wrk is not installed"
        print(f"using the Python load generator ({why}): compare its figures only with each other")
    pinned = not a.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    if not a.no_pin and not pinned:
        print("not pinning: needs 2 CPUs and taskset (util-linux)")
    opts = runner.Options(
        duration=a.duration, warmup=a.warmup, connections=a.connections,
        idle_seconds=a.idle_seconds, idle_connections=a.idle_connections,
        million_requests=a.million_requests, use_wrk=use_wrk, pinned=pinned,
    )
    runner.prepare(opts)
    results: dict = {
        "environment": report.environment(),
        "options": {
            "duration": a.duration, "warmup": a.warmup, "connections": a.connections,
            "idle_seconds": a.idle_seconds, "idle_connections": a.idle_connections,
            "million_requests": a.million_requests,
            "loadgen": "wrk -t1" if use_wrk else "python", "pinned": pinned,
        },
        "servers": {},
        "skipped": {},
    }
    started = time.monotonic()
    for name in a.server_names:
        server = SERVERS[name]
        why = missing(server)
        if why:
            print(f"{server.label}: SKIPPED, it cannot be imported here: {why}")
            results["skipped"][name] = f"cannot be imported: {why}"
            continue
        entry: dict = {"workloads": {}}
        results["servers"][name] = entry
        start_failure = None
        for w in a.workload_names:
            if start_failure:  # it will not start for the next workload either
                r = {"error": start_failure}
            else:
                try:
                    if w in HTTP_WORKLOADS:
                        r = runner.measure_workload(server, HTTP_WORKLOADS[w], opts)
                    else:
                        r = MEASURES[w](server, opts)
                except ServerFailed as e:
                    start_failure = f"server failed to start: {e}"
                    r = {"error": start_failure}
                except Exception as e:  # record it and go on with the next workload
                    r = {"error": f"{type(e).__name__}: {e}"}
            (entry["workloads"] if w in HTTP_WORKLOADS else entry)[w] = r
            print(f"{server.label:<22} {w:<12} {_summary(w, r)}", flush=True)
        report.write(results, a.output)  # after each server, so a partial run keeps its figures
    paths = report.write(results, a.output)
    print(f"done in {time.monotonic() - started:.0f} s: " + ", ".join(str(p) for p in paths))
    shutil.rmtree(opts.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
