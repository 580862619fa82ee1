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
from collections.abc import Callable
from pathlib import Path

from benchmarks import procstat
from benchmarks.servers import HOST, REPO, SERVERS, free_port, serves
from benchmarks.workloads import HTTP_WORKLOADS

WORKLOADS = ("plaintext", "json", "param", "page", "pipelined")


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def drive(port: int, batch: bytes, answers: int, requests: int, connections: int,
          complete: Callable[[bytes], bool], timeout: float = 60) -> int:
    """Send ``batch`` (``answers`` requests) on every one of ``connections`` keep-alive
    connections, read each until ``complete(what was read)``, and repeat until ``requests``
    were answered; returns the answers counted. The callgrind benchmarks share this loop."""
    socks = [socket.create_connection((HOST, port), timeout=timeout) for _ in range(connections)]
    done = 0
    try:
        while done < requests:
            for s in socks:
                s.sendall(batch)
            for s in socks:
                buf = b""
                while not complete(buf):
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError("the server closed a connection")
                    buf += chunk
                done += answers
    finally:
        for s in socks:
            s.close()
    return done


def _drive(port: int, path: str, requests: int, connections: int, pipeline: int) -> int:
    """Send ``requests`` GETs and read every answer; returns the answers counted."""
    # Bodies are short and fixed: the last answer is complete when its body is in, which
    # the next recv() call (or the next batch) sorts out.
    return drive(port, _request(path) * pipeline, pipeline, requests, connections,
                 lambda buf: buf.count(b"HTTP/1.1 ") >= pipeline)


def _answers_plaintext(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1) as s:
        s.sendall(_request("/plaintext"))
        return s.recv(64).startswith(b"HTTP/1.")


def wait_ready(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120.0,
               poll: float = 0.2) -> None:
    """Call ``ready()`` until it returns true (an OSError meaning not yet); fail if the
    server exits first or does not answer within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if ready():
                return
        except OSError:
            time.sleep(poll)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def server_env(**extra: str) -> dict[str, str]:
    """The environment a benchmark server runs in: the repository importable, the system
    allocator (which valgrind follows far better than pymalloc)."""
    env = dict(os.environ, PYTHONMALLOC="malloc", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def callgrind(command: list[str], port: int, run: Callable[[int], int], warmup: int,
              requests: int, *, ready: Callable[[], bool], children: bool = False,
              ready_timeout: float = 120.0, ready_poll: float = 0.2) -> float:
    """Instructions per request: ``command`` (a server listening on ``port``) under
    ``valgrind --tool=callgrind``; once ``ready()``, ``run(warmup)`` warms it up, the counters
    are zeroed, ``run(requests)`` returns the answers counted, the counters are dumped and
    the instructions divided by those answers. ``children``: trace exec'd children too and
    count every process of the server's tree (Granian serves from a child process)."""
    out = Path(tempfile.mkdtemp(prefix="corkweb-callgrind-"))
    trace = ["--trace-children=yes"] if children else []
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", *trace, f"--callgrind-out-file={out}/cg.%p", *command],
        cwd=REPO, env=server_env(BENCH_PORT=str(port)), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_ready(proc, ready, ready_timeout, ready_poll)
        run(warmup)
        # start-up and warm-up are not counted
        pids = procstat.tree(proc.pid) if children else [proc.pid]
        for pid in pids:
            # a process of the tree may be no valgrind one (nothing to zero there)
            subprocess.run(["callgrind_control", "--zero", str(pid)], check=not children,
                           capture_output=True)
        answered = run(requests)
        for pid in pids:
            subprocess.run(["callgrind_control", "--dump", str(pid)], check=not children,
                           capture_output=True)
        total = 0
        for f in out.glob("cg.*.*"):  # the dumps (cg.PID.1), not the files written at exit
            m = re.search(r"^summary:\s+(\d+)", f.read_text(errors="replace"), re.M)
            if m:
                total += int(m.group(1))
        return total / answered
    finally:
        stop(proc)
        shutil.rmtree(out, ignore_errors=True)


def measure(server_name: str, workload: str, requests: int, connections: int) -> float:
    server = SERVERS[server_name]
    w = HTTP_WORKLOADS[workload]
    port = free_port()
    return callgrind(
        [sys.executable, "-m", server.module, str(port)], port,
        lambda count: _drive(port, w.path, count, connections, w.pipeline),
        max(200, requests // 5), requests, ready=lambda: _answers_plaintext(port))


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
