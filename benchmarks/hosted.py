"""Hosted ASGI apps: server CPU per request of the same app on corkweb, uvicorn and Granian.

    python -m benchmarks.hosted [--apps raw,starlette,fastapi] [--servers corkweb,uvicorn,granian]
                                [--workloads plaintext,json,pipelined] [-d 5] [--repeat 3]
                                [-o /tmp/hosted_out]

Each (app, server, workload) gets a fresh server process pinned to CPU 0 (one worker, uvloop;
uvicorn with httptools and no access log; Granian with one runtime thread) and wrk pinned to
CPU 1 (64 connections; ``pipelined`` sends 16 requests per write). The figure is the
server's user + system CPU time over the requests completed, as in ``python -m benchmarks``;
medians of the repeats are printed with the ratios DESIGN.md §5 sets goals for. The server
``native`` (``--servers native,corkweb,...``) is the same two answers from corkweb handlers
(``benchmarks/apps/corkweb_app.py``): what hosting costs on top of corkweb itself; it runs
in the raw app's rows only (the other apps' rows would repeat it). ``-o DIR`` also writes every
figure (``hosted.json``: each repeat, the commit measured, the command) and the table
(``hosted.md``) there.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import procstat, wrk
from benchmarks.servers import HOST, REPO, free_port, pin

APPS = ("raw", "starlette", "fastapi")
SERVERS = ("corkweb", "uvicorn", "granian")
WORKLOADS = {"plaintext": ("/plaintext", 0), "json": ("/json", 0),
             "pipelined": ("/plaintext", 16)}


def command(server: str, app: str, port: int) -> list[str]:
    target = f"benchmarks.apps.asgi_apps:{app}"
    if server == "native":  # the reference: the same answers from corkweb's own handlers
        return [sys.executable, "-m", "benchmarks.apps.corkweb_app", str(port)]
    if server == "corkweb":
        return [sys.executable, "-m", "corkweb", "run", "--interface", "asgi", "--host", HOST,
                "--port", str(port), "--log-level", "warning", target]
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--http", "httptools", "--loop", "uvloop",
                "--no-access-log", "--log-level", "warning", "--host", HOST, "--port",
                str(port), target]
    if server == "granian":
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1",
                "--runtime-threads", "1", "--loop", "uvloop", "--no-access-log",
                "--log-level", "warning", "--host", HOST, "--port", str(port), target]
    raise ValueError(server)


def measure(server: str, app: str, workload: str, seconds: float, script: Path) -> float:
    """Server CPU µs per request for one fresh server."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                                    os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([*pin(0), *command(server, app, port)], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection((HOST, port), timeout=0.5).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        output = log.read()[-500:]
                        raise RuntimeError(f"{server} did not start: {output!r}") from None
                    time.sleep(0.05)
            path, depth = WORKLOADS[workload]
            url = f"http://{HOST}:{port}{path}"
            extra = {"script": script, "script_args": [str(depth)]} if depth else {}
            wrk.run(url, 1, 64, pin=pin(1), **extra)  # warm-up
            before = procstat.cpu_seconds(proc.pid)
            result = wrk.run(url, seconds, 64, pin=pin(1), **extra)
            used = procstat.cpu_seconds(proc.pid) - before
            if not result["requests"] or result["non_2xx"] or result["socket_errors"]:
                raise RuntimeError(f"{server}/{app}/{workload}: {result}")
            return used * 1e6 / result["requests"]
        finally:
            try:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", default=",".join(APPS))
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("-d", "--duration", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("-o", "--output", help="a folder for hosted.json and hosted.md")
    args = ap.parse_args(argv)
    if not wrk.available():
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 1
    os.sched_setaffinity(0, {1})
    folder = Path(tempfile.mkdtemp(prefix="corkweb-hosted-"))
    script = wrk.write_scripts(folder)["pipeline"]
    apps = args.apps.split(",")
    servers = args.servers.split(",")
    workloads = args.workloads.split(",")
    figures: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(args.repeat):
        # Interleaved: each repeat visits every server once, so a noisy minute hits all alike.
        for app in apps:
            for workload in workloads:
                for server in servers:
                    if server == "native" and app != "raw":
                        continue  # the same two native answers whatever the app: once is enough
                    us = measure(server, app, workload, args.duration, script)
                    figures.setdefault((app, workload, server), []).append(us)
                    print(f"{app:9} {workload:9} {server:8} {us:7.2f} µs/request", flush=True)
    lines = [f"| app | workload | {' | '.join(servers)} | ratios |"]
    lines.append("|" + "---|" * (lines[0].count("|") - 1))
    for app in apps:
        for workload in workloads:
            med = {s: statistics.median(figures[(app, workload, s)]) for s in servers
                   if (app, workload, s) in figures}
            ratios = []
            if "corkweb" in med:
                mine = figures[(app, workload, "corkweb")]
                for peer in servers:
                    if peer not in ("corkweb", "native"):
                        # the spread: corkweb's figure over the peer's, repeat by repeat
                        theirs = figures[(app, workload, peer)]
                        each = [a / b for a, b in zip(mine, theirs, strict=True)]
                        spread = (f" ({min(each):.2f}–{max(each):.2f})" if len(each) > 1
                                  else "")
                        ratios.append(f"{med['corkweb'] / med[peer]:.2f}×{spread} {peer}")
            cells = " | ".join(
                "" if s not in med else
                f"{med[s]:.2f}" + (f" ({min(figures[(app, workload, s)]):.2f}–"
                                   f"{max(figures[(app, workload, s)]):.2f})"
                                   if args.repeat > 1 else "") for s in servers)
            lines.append(f"| {app} | {workload} | {cells} | {', '.join(ratios)} |")
    print("\nmedians (µs of server CPU per request) and ratios:")
    print("\n".join(lines))
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip()
        record = {"command": ["python", "-m", "benchmarks.hosted", *(argv or sys.argv[1:])],
                  "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "figures": [{"app": a, "workload": w, "server": s, "us_per_request": v}
                              for (a, w, s), v in figures.items()]}
        (out / "hosted.json").write_text(json.dumps(record, indent=1) + "\n")
        (out / "hosted.md").write_text(
            f"commit {commit}, {record['date']}\n\n" + "\n".join(lines) + "\n")
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
