"""``python -m benchmarks``: run corkweb and its peers through the same workloads.

Examples (from the repository root)::

    python -m benchmarks                                  # everything but the 1M-request run
    python -m benchmarks --servers corkweb,starlette --workloads plaintext,json -d 3
    python -m benchmarks --million                        # add RSS over a million requests
    python -m benchmarks --servers corkweb,socketify,floor --workloads plaintext,json --repeat 3
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
from benchmarks.servers import SERVERS, ServerFailed, missing, serves
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
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of every measurement; the report shows medians and spread (3)")
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


# The figure by which the median run of a measurement is chosen.
MEDIAN_KEY = {"idle": "cpu_percent", "conn-memory": "kib_per_connection", "million": "growth_kib"}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summarise(results: dict, runs: dict[str, dict[str, list[dict]]]) -> None:
    """Fold the repeated runs into ``results``: each measurement keeps its median run (by CPU
    per request) with every run's figure beside it, and corkweb's ratios to socketify.py and
    to the floor are taken run by run (the same repeat saw the same machine) and then folded
    into a median and a range."""
    servers = results["servers"]
    for name, by_workload in runs.items():
        entry = servers.setdefault(name, {"workloads": {}})
        for w, rs in by_workload.items():
            key = MEDIAN_KEY.get(w, "cpu_us")
            ok = [r for r in rs if "error" not in r and r.get(key) is not None]
            if not ok:
                chosen = rs[-1]
            else:
                ok.sort(key=lambda r: r[key])
                chosen = dict(ok[(len(ok) - 1) // 2])
                values = [r[key] for r in ok]
                chosen["repeats"] = {key: values, "failed": len(rs) - len(ok)}
                chosen[key] = _median(values)
            (entry["workloads"] if w in HTTP_WORKLOADS else entry)[w] = chosen
    ratios: dict[str, dict[str, dict]] = {}
    mine = runs.get("corkweb", {})
    for other in ("socketify", "floor"):
        theirs = runs.get(other, {})
        for w, rs in mine.items():
            if w not in HTTP_WORKLOADS or w not in theirs:
                continue
            per_run = [a["cpu_us"] / b["cpu_us"] for a, b in zip(rs, theirs[w], strict=False)
                       if "error" not in a and "error" not in b and b.get("cpu_us")]
            if per_run:
                ratios.setdefault(w, {})[other] = {
                    "median": _median(per_run), "min": min(per_run), "max": max(per_run),
                    "runs": per_run,
                }
    results["ratios"] = ratios


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
            "repeat": a.repeat,
        },
        "servers": {},
        "skipped": {},
    }
    started = time.monotonic()
    runnable = []
    for name in a.server_names:
        server = SERVERS[name]
        why = missing(server)
        if why:
            print(f"{server.label}: SKIPPED, it cannot be imported here: {why}")
            results["skipped"][name] = f"cannot be imported: {why}"
        else:
            runnable.append(server)
    runs: dict[str, dict[str, list[dict]]] = {s.name: {} for s in runnable}
    start_failures: dict[str, str] = {}
    # Repeats are the outer loop: a slow spell of the machine then touches every server
    # alike instead of all the runs of one.
    for rep in range(a.repeat):
        for server in runnable:
            for w in a.workload_names:
                if not serves(server, w):
                    continue
                if server.name in start_failures:  # it will not start for the next one either
                    r = {"error": start_failures[server.name]}
                else:
                    try:
                        if w in HTTP_WORKLOADS:
                            r = runner.measure_workload(server, HTTP_WORKLOADS[w], opts)
                        else:
                            r = MEASURES[w](server, opts)
                    except ServerFailed as e:
                        start_failures[server.name] = f"server failed to start: {e}"
                        r = {"error": start_failures[server.name]}
                    except Exception as e:  # record it and go on with the next workload
                        r = {"error": f"{type(e).__name__}: {e}"}
                runs[server.name].setdefault(w, []).append(r)
                print(f"[{rep + 1}/{a.repeat}] {server.label:<22} {w:<12} {_summary(w, r)}",
                      flush=True)
        summarise(results, runs)
        report.write(results, a.output)  # after each repeat: a partial run keeps its figures
    paths = report.write(results, a.output)
    print(f"done in {time.monotonic() - started:.0f} s: " + ", ".join(str(p) for p in paths))
    shutil.rmtree(opts.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
