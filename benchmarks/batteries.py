"""What each production battery costs per request, in instructions (callgrind) and µs.

    python -m benchmarks.batteries                      # every route, 2000 requests each
    python -m benchmarks.batteries --routes plain,csrf --requests 4000

One app serves a route per battery (each battery on its own route only) next to ``/plain``,
which uses none; a second app, ``bare``, has only ``/plain`` and no battery at all. For each
route the server runs under ``valgrind --tool=callgrind``; after a warm-up the counters are
zeroed, then exactly ``--requests`` keep-alive GETs are counted and the instructions divided
by the requests. ``plain`` in both apps shows what a route without batteries pays for the
others being registered (nothing). µs figures use ``--us``: the same app without valgrind,
CPU time of the server process per request from /proc (noisy on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import instructions as bench
from benchmarks.servers import REPO, free_port

KEY = "benchmark-secret-key-0123456789"

# route name -> (path, extra request headers)
ROUTES: dict[str, tuple[str, str]] = {
    "plain": ("/plain", ""),
    "param": ("/items/7", ""),
    "noop": ("/noop", ""),
    "security": ("/security", ""),
    "request_id": ("/request-id", ""),
    "csrf": ("/csrf", ""),
    "ratelimit": ("/ratelimit", ""),
    "ratelimit_redis": ("/ratelimit-redis", ""),  # needs CORKWEB_REDIS=redis://...
    "auth": ("/auth", "Authorization: Bearer t0ken\r\n"),
    "metrics": ("/metrics-route/7", ""),
    "tracing": ("/traced/7", ""),
    "tracing_noop": ("/traced-noop/7", ""),
}


def build(kind: str) -> Any:
    """The benchmark app: ``bare`` (only /plain) or ``full`` (a route per battery)."""
    from corkweb import App

    app = App(templates=None)

    @app.get("/plain")
    def plain(res: Any, req: Any) -> None:
        res.end("Hello, World!")

    if kind == "bare":
        return app

    @app.get("/items/:id")
    def param(res: Any, req: Any) -> None:
        res.end("Hello, World!")

    from corkweb import CSRF, RequestID, SecurityHeaders

    def hello(res: Any, req: Any, data: Any = None) -> None:
        res.end("Hello, World!")

    def noop(res: Any, req: Any, data: Any) -> Any:
        return data if data is not None else True

    app.router("", noop).get("/noop", hello)  # the price of any middleware, for reference
    app.router("", SecurityHeaders()).get("/security", hello)
    app.router("", RequestID()).get("/request-id", hello)
    app.router("", CSRF(KEY, secure=False)).get("/csrf", hello)
    _more(app, hello)
    return app


def _more(app: Any, hello: Any) -> None:
    """The batteries with optional dependencies, when they are importable."""
    import corkweb

    if hasattr(corkweb, "RateLimit"):
        app.router("", corkweb.RateLimit("1000000/second")).get("/ratelimit", hello)
    if os.environ.get("CORKWEB_REDIS"):
        limit = corkweb.RedisRateLimit("1000000/second", name="bench")
        app.router("", limit).get("/ratelimit-redis", hello)
        app.on_shutdown(limit.close)
    if hasattr(corkweb, "BearerAuth"):
        app.router("", corkweb.BearerAuth(lambda token: {"user": token})).get("/auth", hello)
    try:
        from corkweb import Metrics
    except ImportError as exc:  # the metrics extra is optional: say that its route is left out
        print(f"no /metrics-route: {exc}", file=sys.stderr)
    else:
        app.router("", Metrics(registry=None)).get("/metrics-route/:id", hello)
    try:
        from corkweb import Tracing
    except ImportError as exc:  # the tracing extra is optional: say that its routes are left out
        print(f"no tracing routes: {exc}", file=sys.stderr)
    else:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.trace import NoOpTracerProvider

        app.router("", Tracing(tracer_provider=TracerProvider())).get("/traced/:id", hello)
        # The API's no-op provider: what the middleware itself costs, without the SDK.
        app.router("", Tracing(tracer_provider=NoOpTracerProvider())).get(
            "/traced-noop/:id", hello)


def serve(kind: str, port: int) -> None:
    build(kind).run(port=port)


def _request(path: str, headers: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n{headers}\r\n".encode()


def _answered(buf: bytes) -> bool:
    """Whether ``buf`` holds one whole answer (content-length framed); it must be a 200."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    m = re.search(rb"content-length: (\d+)", buf[:end], re.I)
    if not (m and len(buf) >= end + 4 + int(m.group(1))):
        return False
    if not buf.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer {buf[:200]!r}")
    return True


def drive(port: int, request: bytes, count: int, connections: int = 4) -> int:
    return bench.drive(port, request, 1, count, connections, _answered)


def _ready(port: int) -> bool:
    return drive(port, _request("/plain", ""), 1, 1) == 1


def _start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, cwd=REPO, env=bench.server_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        bench.wait_ready(proc, lambda: _ready(port))
    except RuntimeError:
        bench.stop(proc)
        raise
    return proc


def instructions(kind: str, route: str, requests: int) -> float:
    path, headers = ROUTES[route]
    port = free_port()
    request = _request(path, headers)
    return bench.callgrind(
        [sys.executable, "-m", "benchmarks.batteries", "serve", kind, str(port)], port,
        lambda count: drive(port, request, count), max(200, requests // 5), requests,
        ready=lambda: _ready(port))


def microseconds(kind: str, route: str, requests: int) -> float:
    path, headers = ROUTES[route]
    port = free_port()
    proc = _start([sys.executable, "-m", "benchmarks.batteries", "serve", kind, str(port)],
                  port)
    try:
        request = _request(path, headers)
        drive(port, request, 2000)

        def cpu() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        before = cpu()
        answered = drive(port, request, requests)
        return (cpu() - before) / answered * 1e6
    finally:
        bench.stop(proc)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["serve"]:
        serve(argv[1], int(argv[2]))
        return 0
    ap = argparse.ArgumentParser(prog="python -m benchmarks.batteries")
    ap.add_argument("--routes", default=",".join(ROUTES))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--us", action="store_true", help="CPU µs per request, no valgrind")
    a = ap.parse_args(argv)
    measure = microseconds if a.us else instructions
    unit = "µs" if a.us else "instructions"
    if not a.us and not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    requests = a.requests * (10 if a.us else 1)
    plain = measure("bare", "plain", requests)
    print(f"{'bare app /plain':<22} {plain:12,.2f} {unit} per request", flush=True)
    for route in a.routes.split(","):
        value = measure("full", route, requests)
        print(f"{'full app ' + ROUTES[route][0]:<22} {value:12,.2f} {unit} per request  "
              f"({value - plain:+,.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
