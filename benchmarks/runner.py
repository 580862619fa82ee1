"""Run the measurements: one fresh server per (server, workload), pinned to CPU 0, with
the load generator (wrk, or the Python clients) pinned to CPU 1.

The figure that matters is the server's CPU time per request: user + system seconds of
the server's process tree, read from ``/proc`` just before and just after the timed load,
divided by the requests completed. It holds on a noisy machine where requests per second
do not.
"""
from __future__ import annotations

import os
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import loadgen, procstat, wrk, wsclient
from benchmarks.servers import HOST, RunningServer, Server, pin
from benchmarks.workloads import HTTP_WORKLOADS, STATIC_FILES, Workload, check

SERVER_CPU = 0
CLIENT_CPU = 1


@dataclass
class Options:
    duration: float = 5.0
    warmup: float = 1.0
    connections: int = 64
    idle_seconds: float = 10.0
    idle_connections: int = 2000
    million_requests: int = 1_000_000
    use_wrk: bool = True
    pinned: bool = True
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="corkweb-bench-")))


def prepare(opts: Options) -> None:
    """Pin this process (the Python clients) to the client CPU, raise the fd limit (the
    servers inherit it), and write the static files and wrk scripts into the work dir."""
    if opts.pinned:
        os.sched_setaffinity(0, {CLIENT_CPU})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = opts.idle_connections + 1024
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard > 0 else want, hard))
    static = opts.workdir / "static"
    static.mkdir(parents=True, exist_ok=True)
    for name, size in STATIC_FILES.items():
        path = static / name
        if not path.exists() or path.stat().st_size != size:
            path.write_bytes(os.urandom(size))
    wrk.write_scripts(opts.workdir)


def _client_pin(opts: Options) -> list[str]:
    return pin(CLIENT_CPU if opts.pinned else None)


def _client_cpu() -> float:
    """CPU seconds of this process (the Python clients) and its waited-for children (wrk)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _load(srv: RunningServer, w: Workload, seconds: float, opts: Options, on_start=None) -> dict:
    """Drive ``w`` for ``seconds``; ``on_start`` runs right before the timed part. The
    result also says how busy the client was: near 100 %, the client is the bottleneck."""
    before = _client_cpu()
    result = _drive(srv, w, seconds, opts, on_start or (lambda: None))
    if result.get("seconds"):
        result["client_cpu_percent"] = (_client_cpu() - before) / result["seconds"] * 100
    return result


def _drive(srv: RunningServer, w: Workload, seconds: float, opts: Options, on_start) -> dict:
    if w.websocket:
        return wsclient.echo_load(
            HOST, srv.port, w.path, seconds=seconds, connections=opts.connections, on_start=on_start
        )
    if opts.use_wrk:
        script, args = None, None
        if w.pipeline > 1:
            script, args = opts.workdir / "pipeline.lua", [str(w.pipeline)]
        elif w.method == "POST":
            script = opts.workdir / "upload.lua"
        env = dict(os.environ, BENCH_BODY_SIZE=str(w.body_size))
        on_start()
        return wrk.run(
            f"http://{HOST}:{srv.port}{w.path}",
            seconds,
            opts.connections,
            pin=_client_pin(opts),
            script=script,
            script_args=args,
            env=env,
        )
    return loadgen.http_load(
        HOST,
        srv.port,
        w.method,
        w.path,
        seconds=seconds,
        connections=opts.connections,
        pipeline=w.pipeline,
        body=b"x" * w.body_size,
        on_start=on_start,
    )


def _start(server: Server, opts: Options) -> RunningServer:
    cpu = SERVER_CPU if opts.pinned else None
    srv = RunningServer(server, cpu=cpu, static_dir=opts.workdir / "static")
    try:
        srv.wait_ready()
    except Exception:
        srv.stop()
        raise
    return srv


def measure_workload(server: Server, w: Workload, opts: Options) -> dict:
    """Requests/s, latency, errors and server CPU µs per request for one workload."""
    with _start(server, opts) as srv:
        problem = check(HOST, srv.port, w)
        if problem:
            return {"error": f"wrong answer: {problem}"}
        marks: dict[str, float] = {}

        def start() -> None:
            marks["cpu"] = procstat.cpu_seconds(srv.pid)

        try:
            _load(srv, w, opts.warmup, opts)
            result = _load(srv, w, opts.duration, opts, on_start=start)
        except OSError as e:  # the clients could not connect, or lost the connection
            died = "" if srv.alive() else f"; server died: {srv.why()}"
            return {"error": f"{type(e).__name__}: {e}{died}"}
        used = procstat.cpu_seconds(srv.pid) - marks["cpu"]
        if w.pipeline > 1:
            result["latency_ms"] = {}  # wrk times a batch of pipelined requests, not each one
        if not srv.alive():
            result["error"] = f"server died: {srv.why()}"
            result["log"] = srv.output()[-30:]
        elif not result["requests"]:
            # wrk's 10 s timeout is longer than the window, so requests held up for the whole
            # window count as neither answers nor errors: ask once more, timed, to tell a stuck
            # server (or database) from one that recovered, and keep the server's last lines.
            asked = time.monotonic()
            late = check(HOST, srv.port, w) or "answered correctly"
            result["error"] = (f"no request completed (one request after the window: {late}"
                               f" in {time.monotonic() - asked:.2f} s): "
                               + result.pop("output", ""))
            result["log"] = srv.output()[-30:]
        else:
            result["cpu_us"] = used * 1e6 / result["requests"]
            result["server_cpu_seconds"] = used
            # Below ~90 % the server was not the bottleneck (client-bound, or a noisy CPU).
            result["server_cpu_percent"] = used / result["seconds"] * 100
        return result


def measure_idle(server: Server, opts: Options) -> dict:
    """CPU % that the server uses with no traffic, after a warm-up."""
    with _start(server, opts) as srv:
        _load(srv, HTTP_WORKLOADS["plaintext"], opts.warmup, opts)
        time.sleep(1)  # let the warm-up's connections close
        before = procstat.cpu_seconds(srv.pid)
        time.sleep(opts.idle_seconds)
        used = procstat.cpu_seconds(srv.pid) - before
        return {"cpu_percent": used / opts.idle_seconds * 100, "seconds": opts.idle_seconds}


def measure_conn_memory(server: Server, opts: Options) -> dict:
    """RSS added per idle keep-alive connection that made one request."""
    with _start(server, opts) as srv:
        _load(srv, HTTP_WORKLOADS["plaintext"], opts.warmup, opts)
        time.sleep(1)
        before = procstat.rss_bytes(srv.pid)
        held = loadgen.idle_connections(
            HOST, srv.port, "/plaintext", opts.idle_connections, lambda: procstat.rss_bytes(srv.pid)
        )
        if not held["opened"]:
            return {"error": f"no connection could be held open: {srv.why()}"}
        delta = held.pop("measured") - before
        return {
            **held,
            "rss_before": before,
            "rss_delta": delta,
            "kib_per_connection": delta / held["opened"] / 1024,
        }


def measure_million(server: Server, opts: Options) -> dict:
    """RSS before and after ``million_requests`` plaintext requests (in 10 s slices)."""
    w = HTTP_WORKLOADS["plaintext"]
    with _start(server, opts) as srv:
        _load(srv, w, opts.warmup, opts)
        before = procstat.rss_bytes(srv.pid)
        total, samples, started = 0, [], time.monotonic()
        while total < opts.million_requests:
            result = _load(srv, w, 10, opts)
            if not result["requests"] or not srv.alive():
                return {"error": f"stopped after {total} requests: {srv.why()}"}
            total += result["requests"]
            samples.append((total, procstat.rss_bytes(srv.pid)))
        after = samples[-1][1]
        return {
            # The first slice may still fill caches and allocator pools: growth after it
            # is what a leak would show.
            "growth_after_first_slice_kib": (after - samples[0][1]) / 1024,
            "requests": total,
            "seconds": time.monotonic() - started,
            "rss_before_mib": before / 2**20,
            "rss_after_mib": after / 2**20,
            "growth_kib": (after - before) / 1024,
            "samples": samples,
        }
