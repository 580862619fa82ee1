"""Instructions per request: a figure that a busy machine cannot blur.

CPU time per request (the suite's headline) moves with whatever else the machine runs;
instructions executed do not. This runs one benchmark app under ``valgrind --tool=callgrind``
, warms it up, zeroes the counters, then counts exactly ``--requests``
requests sent over ``--connections`` keep-alive connections (``--pipeline`` per write), and
divides the instructions counted by the requests answered. Valgrind slows the server some
fifty times, so a few thousand requests are plenty.

    python -m benchmarks.instructions --servers corkweb,floor --workloads plaintext,json
    python -m benchmarks.instructions --servers corkweb --workloads param --requests 4000

Only the request/response cycle in the server process is counted; the client runs outside
valgrind. Compare figures from the same machine and Python build.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.servers import HOST, REPO, SERVERS, free_port, serves
from benchmarks.workloads import HTTP_WORKLOADS

WORKLOADS = ("plaintext", "json", "param", "page", "pipelined")


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def _drive(port: int, path: str, requests: int, connections: int, pipeline: int) -> int:
    """Send ``requests`` GETs and read every answer; returns the answers counted."""
    socks = [socket.create_connection((HOST, port), timeout=60) for _ in range(connections)]
    batch = _request(path) * pipeline
    done = 0
    try:
        while done < requests:
            for s in socks:
                s.sendall(batch)
            for s in socks:
                seen, buf = 0, b""
                while seen < pipeline:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError("the server closed a connection")
                    buf += chunk
                    seen = buf.count(b"HTTP/1.1 ")
                    # Bodies are short and fixed: the last answer is complete when its body is
                    # in, which the next recv() call (or the next batch) sorts out.
                done += pipeline
    finally:
        for s in socks:
            s.close()
    return done


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                s.sendall(_request("/plaintext"))
                if s.recv(64).startswith(b"HTTP/1."):
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not answer under valgrind")


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def measure(server_name: str, workload: str, requests: int, connections: int) -> float:
    server = SERVERS[server_name]
    w = HTTP_WORKLOADS[workload]
    port = free_port()
    out = Path(tempfile.mkdtemp(prefix="corkweb-callgrind-"))
    env = dict(os.environ, BENCH_PORT=str(port), PYTHONMALLOC="malloc")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind",
         f"--callgrind-out-file={out}/cg.%p", sys.executable, "-m", server.module, str(port)],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_port(port, proc)
        pipeline = w.pipeline
        _drive(port, w.path, max(200, requests // 5), connections, pipeline)  # warm-up
        _control(proc.pid, "--zero")  # start-up and warm-up are not counted
        answered = _drive(port, w.path, requests, connections, pipeline)
        _control(proc.pid, "--dump")
        total = 0
        for f in out.glob("cg.*.*"):  # the dump (cg.PID.1), not the file written at exit
            m = re.search(r"^summary:\s+(\d+)", f.read_text(errors="replace"), re.M)
            if m:
                total = max(total, int(m.group(1)))
        return total / answered
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.instructions",
                                 description="Instructions per request under callgrind.")
    ap.add_argument("--servers", default="corkweb,floor")
    ap.add_argument("--workloads", default="plaintext,json,param,pipelined")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--connections", type=int, default=8)
    a = ap.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    names = [n for n in a.servers.split(",") if n]
    wls = [w for w in a.workloads.split(",") if w]
    for w in wls:
        if w not in WORKLOADS:
            raise SystemExit(f"unknown workload {w} (known: {', '.join(WORKLOADS)})")
    results: dict[tuple[str, str], float] = {}
    for name in names:
        for w in wls:
            if not serves(SERVERS[name], w):
                continue
            results[name, w] = value = measure(name, w, a.requests, a.connections)
            print(f"{name:<10} {w:<10} {value:10,.0f} instructions per request", flush=True)
    if "corkweb" in names:
        for other in names:
            if other == "corkweb":
                continue
            for w in wls:
                if ("corkweb", w) in results and (other, w) in results:
                    print(f"corkweb ÷ {other:<9} {w:<10} "
                          f"{results['corkweb', w] / results[other, w]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
