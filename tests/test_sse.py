"""Server-Sent Events on real sockets: framing, Last-Event-ID, keep-alive comments, and clean
stops when the client leaves or the server shuts down."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from conftest import read_events

from corkweb import App
from corkweb.sse import Event, EventStream, format_event, stream_events
from corkweb.testing import TestServer


def test_format_event() -> None:
    assert format_event("a\nb\r\nc\rd", event="e", id="7", retry=1000) == (
        b"event: e\nid: 7\nretry: 1000\ndata: a\ndata: b\ndata: c\ndata: d\n\n")
    assert format_event({"x": 1}) == b'data: {"x":1}\n\n'
    assert format_event(comment="hi\nthere") == b": hi\n: there\n\n"
    assert format_event("") == b"data: \n\n"


@pytest.mark.parametrize("kwargs", [
    {"data": "x", "event": "a\nb"}, {"data": "x", "id": "1\r"}, {"data": "x", "id": "1\x00"},
    {"data": "x", "retry": -1}, {"data": "x", "retry": "5"}, {},
])
def test_format_event_refuses_injection(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        format_event(**kwargs)


class Probe:
    """What the server side saw, for the test thread."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.closed = threading.Event()
        self.last_id: list[str | None] = []


@pytest.fixture
def probe() -> Probe:
    return Probe()


def make_app(probe: Probe) -> App:
    app = App(templates=None)

    async def counter(start: int) -> AsyncIterator[Any]:
        probe.started.set()
        try:
            n = start
            while True:
                yield Event({"n": n}, event="count", id=str(n))
                n += 1
                await asyncio.sleep(0.01)  # the source's own pace, not test synchronisation
        finally:
            probe.closed.set()

    @app.get("/count")
    def count(res: Any, req: Any) -> Any:
        last = req.get_header("last-event-id")
        probe.last_id.append(last)
        start = int(last) + 1 if last and last.isdigit() else 0
        return stream_events(res, req, counter(start), retry=2000, check=0.05)

    @app.get("/quiet")
    async def quiet(res: Any, req: Any) -> None:
        async with EventStream(res, req, ping=0.05, check=0.05) as stream:
            probe.last_id.append(stream.last_event_id)
            probe.started.set()
            await stream.wait_closed()
        probe.closed.set()

    @app.get("/finite")
    async def finite(res: Any, req: Any) -> None:
        async with EventStream(res, req) as stream:
            for i in range(3):
                assert await stream.send(f"line {i}\nsecond", id=str(i))

    return app



def test_stream_and_client_leaving_closes_the_source(probe: Probe,
                                                     serve: Callable[..., TestServer]) -> None:
    server = serve(make_app(probe))
    with httpx.stream("GET", server.url + "/count") as r:
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
        events = read_events(r, 4)
    assert events[0] == "retry: 2000"
    assert events[1] == 'event: count\nid: 0\ndata: {"n":0}'
    assert events[3] == 'event: count\nid: 2\ndata: {"n":2}'
    assert probe.closed.wait(5), "the source generator was not closed after the client left"
    assert httpx.get(server.url + "/finite").status_code == 200  # server still fine


def test_last_event_id_resumes(probe: Probe, serve: Callable[..., TestServer]) -> None:
    server = serve(make_app(probe))
    with httpx.stream("GET", server.url + "/count", headers={"last-event-id": "41"}) as r:
        events = read_events(r, 2)
    assert events[1].startswith("event: count\nid: 42\n")
    assert probe.last_id == ["41"]


def test_hostile_last_event_id_is_ignored(probe: Probe, serve: Callable[..., TestServer]) -> None:
    server = serve(make_app(probe))
    with httpx.stream("GET", server.url + "/quiet", headers={"last-event-id": "9" * 5000}) as r:
        read_events(r, 1)
    assert probe.last_id == [None]


def test_keepalive_comments(probe: Probe, serve: Callable[..., TestServer]) -> None:
    server = serve(make_app(probe))
    with httpx.stream("GET", server.url + "/quiet") as r:
        assert read_events(r, 2) == [": ping", ": ping"]
    assert probe.closed.wait(5)


def test_finite_stream_ends_the_chunked_body(probe: Probe,
                                             serve: Callable[..., TestServer]) -> None:
    server = serve(make_app(probe))
    r = httpx.get(server.url + "/finite")
    assert r.text == "".join(f"id: {i}\ndata: line {i}\ndata: second\n\n" for i in range(3))


def test_server_shutdown_ends_open_streams(probe: Probe) -> None:
    server = TestServer(make_app(probe)).__enter__()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        sock.sendall(b"GET /quiet HTTP/1.1\r\nhost: x\r\n\r\n")
        assert probe.started.wait(5)
        stopper = threading.Thread(target=server.__exit__, args=(None, None, None))
        stopper.start()
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        stopper.join(10)
        assert not stopper.is_alive()
    finally:
        sock.close()
    assert probe.closed.is_set()
    assert data.endswith(b"0\r\n\r\n")  # a clean end of the chunked body, not a reset


def test_backpressure_with_a_slow_reader(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)
    sent: list[bool] = []
    payload = "x" * 65536

    @app.get("/flood")
    async def flood(res: Any, req: Any) -> None:
        async with EventStream(res, req) as stream:
            for i in range(64):  # 4 MiB: far more than the socket buffers hold
                sent.append(await stream.send(payload, id=str(i)))

    server = serve(app)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET /flood HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        data = bytearray()
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"data: " + payload.encode()) == 64 and data.endswith(b"0\r\n\r\n")
    assert sent == [True] * 64
