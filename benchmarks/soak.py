"""Load and soak test: wrk for a fixed time, every error counter read, nothing lost, no growth.

    python -m benchmarks.soak [--duration 30] [--connections 64] [--warmup 5]

Starts a corkweb server in a subprocess (this file with ``--serve``), warms it up, then drives
it with wrk for ``--duration`` seconds with a mix of plaintext, JSON, a POST whose body is
echoed and a 404, while sampling the server's RSS every second. It then reads:

* every counter wrk prints: requests, socket errors (connect, read, write, timeout), non-2xx
  or 3xx responses (the 404s are expected: one request in four; any other is an error);
* the server's own count of requests (kept by a middleware, read at ``/__count``) against
  wrk's: requests wrk had in flight when it stopped are counted by the server but not by wrk,
  so the server's count must lie between wrk's and wrk's plus the number of connections;
* RSS after warm-up and at the end, and the growth per minute fitted over the run.

Exit status 1 if a counter shows an error, a request was lost, or RSS grew by more than
``--max-growth`` MiB. Not part of the test suite: it takes the machine for its duration.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

MIX_LUA = """\
local paths
local i = 0
init = function(args)  -- after wrk has set the Host header
  paths = {
    wrk.format("GET", "/"),
    wrk.format("GET", "/json"),
    wrk.format("POST", "/echo", {["Content-Type"] = "text/plain"}, string.rep("b", 512)),
    wrk.format("GET", "/missing"),
  }
end
request = function()
  i = i % #paths + 1
  return paths[i]
end
"""


def serve() -> None:
    """The server under test (run in a subprocess): prints ``PORT <n>`` once listening."""
    from corkweb import App

    app = App(templates=None)
    count = [0]

    @app.middleware
    def counter(res, req, data):
        if req.path != "/__count":
            count[0] += 1
        return True

    @app.get("/")
    def plaintext(res, req):
        res.end("Hello, World!")

    @app.get("/json")
    def json(res, req):
        res.end({"message": "Hello, World!"})

    @app.post("/echo")
    async def echo(res, req):
        res.end(await res.get_data())

    @app.any("/*")
    def missing(res, req):  # a 404 of our own, so that the middleware counts it too
        res.write_status(404).end("not found")

    @app.get("/__count")
    def report(res, req):
        res.end(str(count[0]))

    app.listen({"host": "127.0.0.1", "port": 0},
               lambda info: print(f"PORT {info['port']}", flush=True))
    app.run()


def rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def server_count(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__count", timeout=10) as r:
        return int(r.read())


def wrk(port: int, seconds: float, connections: int, script: Path) -> dict[str, int]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script),
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout
    counters = {"requests": int(re.search(r"(\d+) requests in", out).group(1))}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    for name, value in zip(("connect", "read", "write", "timeout"),
                           m.groups() if m else (0, 0, 0, 0), strict=True):
        counters[f"socket_{name}"] = int(value)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    counters["non_2xx_3xx"] = int(m.group(1)) if m else 0
    return counters


def slope_mib_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares growth of RSS over time."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    cov = sum((t - mt) * (r - mr) for t, r in samples)
    return cov / var * 60 / (1 << 20) if var else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--max-growth", type=float, default=4.0, help="MiB of RSS growth")
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith(b"PORT "):
            raise RuntimeError(f"server did not start: {line!r}")
        port = int(line.split()[1])
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp, "mix.lua")
            script.write_text(MIX_LUA)
            wrk(port, args.warmup, args.connections, script)
            before = server_count(port)
            rss_start = rss_of(proc.pid)
            samples: list[tuple[float, int]] = []
            stop = threading.Event()

            def sample() -> None:
                start = time.monotonic()
                while not stop.wait(1.0):
                    samples.append((time.monotonic() - start, rss_of(proc.pid)))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            counters = wrk(port, args.duration, args.connections, script)
            stop.set()
            sampler.join()
            served = server_count(port) - before
            rss_end = rss_of(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    tracebacks = stderr.decode(errors="replace").count("Traceback")
    expected_404 = counters["requests"] // 4
    errors = {k: v for k, v in counters.items() if k.startswith("socket_") and v}
    # One rotation per wrk thread over the connections: the share of 404s is exact to a few.
    unexpected = abs(counters["non_2xx_3xx"] - expected_404) > args.connections
    in_flight = served - counters["requests"]
    lost = not 0 <= in_flight <= args.connections
    growth = (rss_end - rss_start) / (1 << 20)
    print(f"duration           {args.duration:.0f} s, {args.connections} connections")
    print(f"requests (wrk)     {counters['requests']}")
    print(f"requests (server)  {served}  (in flight when wrk stopped: {in_flight})")
    print("socket errors      connect {socket_connect}, read {socket_read}, "
          "write {socket_write}, timeout {socket_timeout}".format(**counters))
    print(f"non-2xx/3xx        {counters['non_2xx_3xx']} (404s expected: ~{expected_404})")
    print(f"server tracebacks  {tracebacks}")
    print(f"RSS start / end    {rss_start / (1 << 20):.1f} MiB / {rss_end / (1 << 20):.1f} MiB"
          f"  (growth {growth:+.2f} MiB, trend {slope_mib_per_min(samples):+.2f} MiB/min,"
          f" max {max((r for _, r in samples), default=rss_end) / (1 << 20):.1f} MiB)")
    failed = bool(errors) or unexpected or lost or tracebacks or growth > args.max_growth
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
