"""What a hosted ASGI app costs by itself: instructions per request with no server at all.

Calls an app of ``benchmarks/apps/asgi_apps.py`` in-process, one request after the other, with
a plain scope (the keys every server sends, the ``Host`` header wrk sends), a ``receive`` that
answers an empty body and a ``send`` that does nothing. It runs under
``valgrind --tool=callgrind`` twice, for ``--requests`` and for three times as many, and divides
the difference of the totals by the extra requests, so start-up and imports cancel out.

    python -m benchmarks.app_alone --app fastapi --paths /plaintext,/json

Subtract the figure from a server's count (``python -m benchmarks.instructions_ab --app
fastapi [--server uvicorn]``) to see what that server itself costs per request; the ``raw``
app's figure is this harness's own overhead plus the raw app's two messages.
Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from typing import Any

from benchmarks.instructions_ab import HOSTED, total_ir

WARMUP = 300


def serve(app_name: str, path: str, count: int) -> None:
    """Make ``count`` requests to the app in this process (after a warm-up)."""
    from benchmarks.apps import asgi_apps

    app = getattr(asgi_apps, app_name)
    template = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
                "http_version": "1.1", "server": ("127.0.0.1", 8000),
                "client": ("127.0.0.1", 50000), "scheme": "http", "method": "GET",
                "root_path": "", "path": path, "raw_path": path.encode(), "query_string": b"",
                "headers": [(b"host", b"bench")]}
    answered = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answered.append(message["status"])

    async def main(n: int) -> None:
        for _ in range(n):
            await app(dict(template), receive, send)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(main(WARMUP))
    if set(answered) != {200}:
        raise SystemExit(f"{app_name} answered {sorted(set(answered))} for {path}")
    loop.run_until_complete(main(count))
    loop.close()


def count(app_name: str, path: str, requests: int) -> float:
    totals = []
    with tempfile.TemporaryDirectory(prefix="corkweb-app-alone-") as out:
        for n in (requests, 3 * requests):
            dump = os.path.join(out, f"cg.{n}")
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}",
                            sys.executable, "-m", "benchmarks.app_alone", "--serve",
                            app_name, path, str(n)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, PYTHONHASHSEED="0"))
            totals.append(total_ir(dump))
    return (totals[1] - totals[0]) / (2 * requests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", default="fastapi", choices=HOSTED)
    parser.add_argument("--paths", default="/plaintext,/json")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--serve", nargs=3, metavar=("APP", "PATH", "COUNT"),
                        help=argparse.SUPPRESS)  # the process valgrind runs
    args = parser.parse_args(argv)
    if args.serve:
        app_name, path, n = args.serve
        serve(app_name, path, int(n))
        return 0
    print(f"{'path':<12} {'instructions/request':>22}")
    for path in args.paths.split(","):
        print(f"{path:<12} {count(args.app, path, args.requests):>22,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
