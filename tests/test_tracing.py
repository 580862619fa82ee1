"""OpenTelemetry tracing with the SDK's in-memory exporter: one SERVER span per request named
by the route pattern, W3C traceparent in and out, semantic-convention attributes, errors
recorded, WebSocket upgrades, aborted requests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from corkweb import App, HTTPError, Tracing  # noqa: E402
from corkweb.testing import TestServer  # noqa: E402

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def build(exporter: InMemorySpanExporter, gate: threading.Event) -> tuple[App, Tracing]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App(templates=None)
    tracing = Tracing(tracer_provider=provider, response_header=True).install(app)

    @app.get("/users/:id")
    def user(res: Any, req: Any) -> None:
        outgoing: dict[str, str] = {}
        tracing.inject(req, outgoing)  # what a call to another service would carry
        res.end(outgoing)

    @app.get("/boom")
    def boom(res: Any, req: Any) -> None:
        raise KeyError("missing thing")

    @app.get("/teapot")
    def teapot(res: Any, req: Any) -> None:
        raise HTTPError(418, "short and stout")

    @app.get("/hang")
    async def hang(res: Any, req: Any) -> None:
        res.on_aborted(lambda res: gate.set())
        await asyncio.Event().wait()

    chat = app.ws("/chat")

    @chat.on_message
    def message(ws: Any, msg: Any, opcode: Any) -> None:
        ws.send(msg)

    return app, tracing


def finished(exporter: InMemorySpanExporter, count: int) -> list[Any]:
    deadline = time.monotonic() + 5
    while len(exporter.get_finished_spans()) < count:
        assert time.monotonic() < deadline, exporter.get_finished_spans()
        time.sleep(0.01)
    return list(exporter.get_finished_spans())


def test_span_per_request_with_propagation(serve: Callable[..., TestServer],
                                           exporter: InMemorySpanExporter) -> None:
    app, _ = build(exporter, threading.Event())
    server = serve(app)
    r = httpx.get(server.url + "/users/42?full=1", headers={
        "traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01", "user-agent": "probe/1"})
    [span] = finished(exporter, 1)
    assert span.name == "GET /users/:id" and span.kind is SpanKind.SERVER
    ctx = span.context
    assert f"{ctx.trace_id:032x}" == PARENT_TRACE  # the caller's trace continues
    assert f"{span.parent.span_id:016x}" == PARENT_SPAN
    attrs = dict(span.attributes)
    assert attrs == {
        "http.request.method": "GET", "http.route": "/users/:id", "url.path": "/users/42",
        "url.query": "full=1", "url.scheme": "http", "network.protocol.version": "1.1",
        "server.address": "127.0.0.1", "server.port": server.port,
        "client.address": "127.0.0.1", "user_agent.original": "probe/1",
        "http.response.status_code": 200}
    # out: the handler's outgoing call carries this span; the answer names it too
    outgoing = r.json()["traceparent"]
    assert outgoing == f"00-{PARENT_TRACE}-{ctx.span_id:016x}-01"
    assert r.headers["traceresponse"] == outgoing
    assert span.status.status_code is StatusCode.UNSET


def test_new_trace_without_traceparent(serve: Callable[..., TestServer],
                                       exporter: InMemorySpanExporter) -> None:
    app, _ = build(exporter, threading.Event())
    server = serve(app)
    httpx.get(server.url + "/users/1")
    httpx.get(server.url + "/users/2")
    a, b = finished(exporter, 2)
    assert a.parent is None and a.context.trace_id != b.context.trace_id
    assert a.name == b.name == "GET /users/:id"  # one name for every id


def test_errors_are_recorded(serve: Callable[..., TestServer],
                             exporter: InMemorySpanExporter) -> None:
    app, _ = build(exporter, threading.Event())
    server = serve(app)
    assert httpx.get(server.url + "/boom").status_code == 500
    assert httpx.get(server.url + "/teapot").status_code == 418
    boom, teapot = finished(exporter, 2)
    assert boom.status.status_code is StatusCode.ERROR
    assert boom.attributes["http.response.status_code"] == 500
    assert boom.attributes["error.type"] == "KeyError"
    [event] = boom.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "KeyError"
    assert "missing thing" in event.attributes["exception.message"]
    assert "Traceback" in event.attributes["exception.stacktrace"]
    # a 4xx is an answer, not a server failure (semantic conventions for SERVER spans)
    assert teapot.status.status_code is StatusCode.UNSET and not teapot.events
    assert teapot.attributes["http.response.status_code"] == 418


def test_websocket_upgrade_span(serve: Callable[..., TestServer],
                                exporter: InMemorySpanExporter) -> None:
    from websockets.sync.client import connect

    app, _ = build(exporter, threading.Event())
    server = serve(app)
    with connect(server.ws_url + "/chat") as ws:
        ws.send("hi")
        assert ws.recv(5) == "hi"
        [span] = finished(exporter, 1)  # ended by the 101, not held open for the socket
    assert span.name == "GET /chat"
    assert span.attributes["http.response.status_code"] == 101


def test_aborted_request_ends_its_span(serve: Callable[..., TestServer],
                                       exporter: InMemorySpanExporter) -> None:
    gate = threading.Event()
    app, _ = build(exporter, gate)
    server = serve(app)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    # closed: the handler started on the request's read, the close arrives after it
    assert gate.wait(5)
    [span] = finished(exporter, 1)
    assert span.name == "GET /hang" and "http.response.status_code" not in span.attributes


def test_activate_makes_the_span_current(serve: Callable[..., TestServer],
                                         exporter: InMemorySpanExporter) -> None:
    from opentelemetry import trace

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App(templates=None)
    tracing = Tracing(tracer_provider=provider).install(app)
    inner_tracer = provider.get_tracer("app")

    @app.get("/work")
    def work(res: Any, req: Any) -> None:
        with tracing.activate(req):
            assert trace.get_current_span() is req.span
            with inner_tracer.start_as_current_span("query"):
                pass
        assert trace.get_current_span() is not req.span  # restored
        res.end("done")

    server = serve(app)
    assert httpx.get(server.url + "/work").text == "done"
    query, request = finished(exporter, 2)
    assert query.name == "query" and query.parent.span_id == request.context.span_id


def test_error_observers_see_every_error_and_cannot_break_the_answer(
        serve: Callable[..., TestServer], caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    app = App(templates=None)
    app.observe_errors(lambda exc, res, req: seen.append(f"{type(exc).__name__} {req.route}"))

    @app.observe_errors
    def broken(exc: BaseException, res: Any, req: Any) -> None:
        raise RuntimeError("observer bug")

    @app.get("/items/:id")
    def item(res: Any, req: Any) -> None:
        raise KeyError(req.get_parameter("id"))

    server = serve(app)
    assert httpx.get(server.url + "/items/3").status_code == 500
    assert seen == ["KeyError /items/:id"]
    assert "error observer" in caplog.text and "observer bug" in caplog.text
