"""Background tasks (``res.background``): after the response, in order, errors logged with the
route, and waited for by a graceful shutdown within the drain timeout; ``req.route``, the
route pattern that names the request in those logs."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from corkweb import App, HTTPError, Limits
from corkweb.testing import TestServer


def test_runs_after_the_response_was_sent(serve: Callable[..., TestServer]) -> None:
    gate, done = threading.Event(), threading.Event()
    order: list[str] = []

    async def slow(name: str) -> None:
        # Blocks until the test has read the response: it can only have been sent before.
        await asyncio.get_running_loop().run_in_executor(None, gate.wait, 5)
        order.append(name)

    def quick(name: str, *, suffix: str) -> None:
        order.append(name + suffix)
        done.set()

    app = App(templates=None)

    @app.post("/signup/:name")
    def signup(res: Any, req: Any) -> None:
        name = req.get_parameter("name")
        res.background(slow, name).background(quick, name, suffix="!")
        res.end("welcome")

    server = serve(app)
    r = httpx.post(server.url + "/signup/ada", timeout=5)
    assert r.text == "welcome" and order == []
    gate.set()
    assert done.wait(5)
    assert order == ["ada", "ada!"]  # one after the other, in the order given


def test_registered_after_the_end_still_runs(serve: Callable[..., TestServer]) -> None:
    done = threading.Event()
    app = App(templates=None)

    @app.get("/late")
    async def late(res: Any, req: Any) -> None:
        res.cork_end("ok")
        await asyncio.sleep(0)
        res.background(done.set)

    server = serve(app)
    assert httpx.get(server.url + "/late").text == "ok"
    assert done.wait(5)


def test_failure_is_logged_with_the_route(serve: Callable[..., TestServer],
                                          caplog: pytest.LogCaptureFixture) -> None:
    done = threading.Event()

    def broken(user_id: str) -> None:
        try:
            raise KeyError(user_id)
        finally:
            done.set()

    app = App(templates=None)

    @app.get("/users/:id")
    def user(res: Any, req: Any) -> None:
        res.background(broken, req.get_parameter("id")).end("ok")

    server = serve(app)
    with caplog.at_level(logging.ERROR, logger="corkweb.error"):
        assert httpx.get(server.url + "/users/42").text == "ok"
        assert done.wait(5)
        deadline = time.monotonic() + 5
        while not [r for r in caplog.records if "background" in r.getMessage()]:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.01)
    record = next(r for r in caplog.records if "background" in r.getMessage())
    assert "broken" in record.getMessage() and "GET /users/:id" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_not_callable_is_refused_at_once(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)

    @app.get("/")
    def home(res: Any, req: Any) -> None:
        res.background("send mail")

    r = httpx.get(serve(app).url + "/")
    assert r.status_code == 500


async def _exchange(app: App, path: str) -> str:
    host, port = (await app.start("127.0.0.1", 0))[0]
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://{host}:{port}{path}")).text


def test_graceful_shutdown_waits_for_running_tasks() -> None:
    finished: list[str] = []

    async def report() -> None:
        await asyncio.sleep(0.3)  # the work itself, not a synchronisation
        finished.append("report")

    app = App(templates=None)

    @app.get("/")
    def home(res: Any, req: Any) -> None:
        res.background(report).end("queued")

    async def main() -> None:
        assert await _exchange(app, "/") == "queued"
        assert finished == []
        await app.stop()
        assert finished == ["report"]

    asyncio.run(main())


def test_shutdown_cancels_what_outlives_the_drain_timeout(
        caplog: pytest.LogCaptureFixture) -> None:
    cancelled = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    app = App(templates=None, limits=Limits(drain_timeout=0.3))

    @app.get("/")
    def home(res: Any, req: Any) -> None:
        res.background(forever).end("queued")

    async def main() -> float:
        await _exchange(app, "/")
        start = time.monotonic()
        await app.stop()
        return time.monotonic() - start

    with caplog.at_level(logging.WARNING, logger="corkweb.error"):
        took = asyncio.run(main())
    assert cancelled == [True]
    assert took < 3.0
    messages = caplog.text
    assert "cancelling 1 background task" in messages and "forever for GET /" in messages


def test_route_is_the_pattern(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)
    seen: list[Any] = []

    @app.get("/static/page")
    def static(res: Any, req: Any) -> None:
        seen.append(req.route)
        res.end("s")

    @app.get("/files/:name<path>")
    def files(res: Any, req: Any) -> None:
        seen.append(req.route)
        res.end("f")

    @app.get("/yield/:x")
    def first(res: Any, req: Any) -> None:
        req.set_yield(True)

    @app.get("/yield/fixed")
    def second(res: Any, req: Any) -> None:
        seen.append(req.route)
        res.end("y")

    @app.on_error(404)
    def missing(exc: HTTPError, res: Any, req: Any) -> None:
        seen.append(req.route)
        res.write_status(404).end("nope")

    server = serve(app)
    for path in ("/static/page", "/files/a/b.txt", "/yield/fixed", "/nothing/here"):
        httpx.get(server.url + path)
    assert seen == ["/static/page", "/files/:name<path>", "/yield/fixed", None]


def test_sigterm_waits_for_a_background_task() -> None:
    from cli_process import CLIProcess

    with CLIProcess("run", "background_app:app", "--port", "0") as cli:
        cli.ready()
        assert httpx.get(f"http://127.0.0.1:{cli.port}/queue?s=0.5").text == "queued"
        cli.wait_for("background task started")
        assert cli.stop() == 0, cli.output
        assert "background task finished" in cli.output  # before the process exited
