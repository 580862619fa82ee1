"""Prometheus metrics: the real prometheus-client output parsed back, from one process and
aggregated over the two workers of ``corkweb run --workers 2``."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("prometheus_client")
from cli_process import CLIProcess, cli_env  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from corkweb import App, Metrics  # noqa: E402
from corkweb.testing import TestServer  # noqa: E402


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def build(gate: threading.Event) -> App:
    app = App(templates=None)
    Metrics().install(app)

    @app.get("/users/:id")
    def user(res: Any, req: Any) -> None:
        res.end("u")

    @app.get("/boom")
    def boom(res: Any, req: Any) -> None:
        raise RuntimeError("boom")

    @app.get("/hang")
    async def hang(res: Any, req: Any) -> None:
        res.on_aborted(lambda res: gate.set())
        await asyncio.Event().wait()

    chat = app.ws("/chat")

    @chat.on_open
    def opened(ws: Any) -> None:
        ws.subscribe("room")

    @chat.on_message
    def message(ws: Any, msg: Any, opcode: Any) -> None:
        ws.publish("room", msg)
        app.publish("room", "echo")

    return app


def test_requests_by_route_pattern_and_status(serve: Callable[..., TestServer],
                                               caplog: pytest.LogCaptureFixture) -> None:
    server = serve(build(threading.Event()))
    with httpx.Client(base_url=server.url) as c:
        for i in range(3):
            assert c.get(f"/users/{i}").text == "u"
        assert c.get("/boom").status_code == 500
        assert c.get("/no/such/page").status_code == 404
        assert c.post("/users/1").status_code == 405
        text = c.get("/metrics").text
    ok = {"method": "GET", "route": "/users/:id", "status": "200"}
    assert value(text, "corkweb_requests_total", **ok) == 3
    assert value(text, "corkweb_request_duration_seconds_count", **ok) == 3
    assert value(text, "corkweb_request_duration_seconds_sum", **ok) > 0
    assert value(text, "corkweb_request_duration_seconds_bucket", le="+Inf", **ok) == 3
    assert value(text, "corkweb_requests_total", method="GET", route="/boom",
                 status="500") == 1
    assert value(text, "corkweb_requests_total", method="GET", route="<unmatched>",
                 status="404") == 1
    assert value(text, "corkweb_requests_total", method="POST", route="<unmatched>",
                 status="405") == 1
    assert value(text, "corkweb_requests_in_flight") == 1  # the scrape itself
    assert not any("/users/1" in str(key) for key in samples(text))  # never the raw path


def test_aborted_request_is_499_and_leaves_flight(serve: Callable[..., TestServer]) -> None:
    gate = threading.Event()
    server = serve(build(gate))
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while value(httpx.get(server.url + "/metrics").text, "corkweb_requests_in_flight") < 2:
            assert time.monotonic() < deadline
    assert gate.wait(5)  # the server saw the client go away
    text = httpx.get(server.url + "/metrics").text
    assert value(text, "corkweb_requests_total", method="GET", route="/hang", status="499") == 1
    assert value(text, "corkweb_requests_in_flight") == 1  # only this scrape


def test_websockets_and_pubsub(serve: Callable[..., TestServer]) -> None:
    from websockets.sync.client import connect

    server = serve(build(threading.Event()))
    with connect(server.ws_url + "/chat") as a, connect(server.ws_url + "/chat") as b:
        text = httpx.get(server.url + "/metrics").text
        assert value(text, "corkweb_websockets_open") == 2
        a.send("hi")
        assert b.recv(5) == "hi"
        assert sorted([a.recv(5), b.recv(5)]) == ["echo", "echo"]
        text = httpx.get(server.url + "/metrics").text
        assert value(text, "corkweb_pubsub_published_total") == 2
        assert value(text, "corkweb_pubsub_delivered_total") == 3  # b, then a and b
        assert value(text, "corkweb_requests_total", method="GET", route="/chat",
                     status="101") == 2
    deadline = time.monotonic() + 5
    while value(httpx.get(server.url + "/metrics").text, "corkweb_websockets_open") != 0:
        assert time.monotonic() < deadline, "the closes were not counted"


def test_two_workers_aggregated(tmp_path: Path) -> None:
    env = cli_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    with CLIProcess("run", "metrics_app:app", "--port", "0", "--workers", "2",
                    env=env) as cli:
        cli.ready()
        pids = set()
        for i in range(40):  # new connections: SO_REUSEPORT spreads them over both workers
            with httpx.Client() as c:
                pids.add(c.get(f"http://127.0.0.1:{cli.port}/users/{i}").text)
        assert len(pids) == 2, pids
        text = httpx.get(f"http://127.0.0.1:{cli.port}/metrics").text
        assert value(text, "corkweb_requests_total", method="GET", route="/users/:id",
                     status="200") == 40
        assert value(text, "corkweb_request_duration_seconds_count", method="GET",
                     route="/users/:id", status="200") == 40
        assert cli.stop() == 0, cli.output
