"""The server that the fault tests run in a subprocess (to measure its RSS, descriptors, CPU).

``python server_app.py [limit=value ...]`` listens on an ephemeral port of 127.0.0.1, prints
``PORT <n>`` on stdout once listening (the readiness signal), and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from corkweb import App, Limits

BIG = b"x" * (1024 * 1024)


def make_app(limits: Limits) -> App:
    app = App(templates=None, limits=limits)
    counts = {"requests": 0}

    @app.middleware
    def count(res, req, data):
        counts["requests"] += 1
        return True

    @app.get("/")
    def home(res, req):
        res.end("ok")

    @app.get("/big")
    def big(res, req):
        res.end(BIG)

    @app.get("/boom")
    def boom(res, req):
        raise RuntimeError("boom for the fault tests")

    @app.get("/aboom")
    async def aboom(res, req):
        await asyncio.sleep(0)
        raise RuntimeError("async boom for the fault tests")

    @app.post("/echo")
    async def echo(res, req):
        res.end(await res.get_data())

    @app.get("/sentinel")
    def sentinel(res, req):
        res.end("GET /sentinel 0")

    @app.get("/count")
    def count_view(res, req):
        res.end(str(counts["requests"]))

    return app


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    values = {}
    for arg in argv:
        name, _, value = arg.partition("=")
        values[name] = float(value) if "." in value else int(value)
    app = make_app(Limits(**values))

    def announce(info: dict) -> None:
        print(f"PORT {info['port']}", flush=True)

    app.listen({"host": "127.0.0.1", "port": 0}, announce)
    app.run()


if __name__ == "__main__":
    main(sys.argv[1:])
