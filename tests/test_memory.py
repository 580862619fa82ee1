"""Memory comes back when a connection ends, by reference counting alone.

Each test runs a real server and real client sockets in one event loop with the garbage
collector disabled, then checks that the connection, the request, the response and the body
are gone once the connection is closed: weak references for the request and the response, the
live ``HTTPConnection`` objects for the connection (it has ``__slots__`` without a weak
reference slot, to stay small), and ``tracemalloc`` for the body (``bytes`` cannot be weakly
referenced). A reference cycle anywhere (connection <-> parser, an exception's traceback
through a handler's frames, a future's callbacks) keeps them alive and fails the test.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from corkweb import App, stream_events
from corkweb.server.http import HTTPConnection
from corkweb.server.websocket import WebSocketConnection

MiB = 1024 * 1024
BODY = 4 * MiB


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Seen:
    """Weak references to what the handlers saw."""

    def __init__(self) -> None:
        self.refs: dict[str, weakref.ref[Any]] = {}
        self.started = asyncio.Event()
        self.finished = asyncio.Event()

    def keep(self, **objects: Any) -> None:
        for name, obj in objects.items():
            self.refs[name] = weakref.ref(obj)
        self.started.set()

    def alive(self) -> list[str]:
        return [name for name, ref in self.refs.items() if ref() is not None]


def live(cls: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def make_app(seen: Seen) -> App:
    app = App(templates=None)

    @app.get("/")
    def home(res, req):
        seen.keep(res=res, req=req)
        res.end("hello")

    @app.get("/slow")
    async def slow(res, req):
        seen.keep(res=res, req=req)
        res.on_aborted(lambda r: seen.keep(aborted=r))
        try:
            await asyncio.sleep(0.05)
            res.end("late")  # dropped: the client is gone
        finally:
            seen.finished.set()

    @app.post("/upload")
    async def upload(res, req):
        seen.keep(res=res, req=req)
        data = await res.get_data()
        res.end(str(len(data)))

    @app.post("/form")
    async def form(res, req):
        seen.keep(res=res, req=req)
        with await res.get_form(spool_max=64 * 1024) as got:
            res.end(str(got["file"].size))

    async def ticks():
        yield "first"
        while True:
            await asyncio.sleep(3600)
            yield "never"

    @app.get("/events")
    def events(res, req):
        seen.keep(res=res, req=req)
        return stream_events(res, req, ticks(), check=0.05)

    @app.post("/closures")
    def closures(res, req):
        seen.keep(res=res, req=req)
        got = []

        def data(r, chunk, is_end):
            got.append(chunk)
            if is_end:
                r.end(str(len(b"".join(got))))

        # Closures over res, as socketify-style code writes them.
        res.on_aborted(lambda r: print("aborted", res))
        res.on_writable(lambda r, offset: res.get_write_offset() >= 0)
        res.on_data(data)

    def ws_open(ws):
        seen.keep(ws=ws)
        ws.subscribe("room")  # the hub must let go of it too

    app.ws("/ws", {"open": ws_open, "message": lambda ws, msg, opcode: ws.send(msg, opcode)})
    return app


async def settle() -> None:
    """Let the server take in the close: connection_lost, aborted handlers waking up."""
    for _ in range(5):
        await asyncio.sleep(0.01)


def run_case(client: Callable[[int, Seen], Awaitable[None]]) -> None:
    """Serve, run ``client(port, seen)``, close; then nothing of the exchange may be alive."""
    seen = Seen()
    app = make_app(seen)

    async def main() -> None:
        port = (await app.start("127.0.0.1", 0))[0][1]
        conns_before = live(HTTPConnection)
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            await client(port, seen)
            await settle()
            assert seen.refs, "the handler did not run"
            assert seen.alive() == [], f"still alive after the close: {seen.alive()}"
            assert live(HTTPConnection) == conns_before
            assert live(WebSocketConnection) == 0
            held = tracemalloc.get_traced_memory()[0] - baseline
            assert held < MiB // 2, f"{held} bytes still held after the close"
        finally:
            tracemalloc.stop()
            await app.stop()

    asyncio.run(main())


async def exchange(port: int, data: bytes, until: bytes | None = None, times: int = 1) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    got = b""
    if until is not None:
        while got.count(until) < times:
            chunk = await reader.read(65536)
            assert chunk, got
            got += chunk
    writer.close()
    await writer.wait_closed()
    return got


def upload_head(path: str, length: int, ctype: bytes = b"application/octet-stream") -> bytes:
    return (b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n"
            % (path.encode(), ctype, length))


def test_completed_request_is_freed(no_gc: None) -> None:
    async def client(port: int, seen: Seen) -> None:
        await exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n" * 3, until=b"hello", times=3)

    run_case(client)


def test_aborted_request_is_freed_once_its_handler_ends(no_gc: None) -> None:
    async def client(port: int, seen: Seen) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
        await seen.started.wait()
        writer.close()
        await writer.wait_closed()
        await seen.finished.wait()
        assert "aborted" in seen.refs  # on_aborted ran

    run_case(client)


def test_completed_upload_is_freed(no_gc: None) -> None:
    async def client(port: int, seen: Seen) -> None:
        await exchange(port, upload_head("/upload", BODY) + b"x" * BODY,
                       until=str(BODY).encode())

    run_case(client)


def test_aborted_upload_is_freed(no_gc: None) -> None:
    async def client(port: int, seen: Seen) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(upload_head("/upload", BODY) + b"x" * (BODY - 1))
        await writer.drain()
        await seen.started.wait()
        writer.close()
        await writer.wait_closed()

    run_case(client)


def test_aborted_multipart_upload_is_freed(no_gc: None) -> None:
    boundary = b"cut"
    part = (b"--cut\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
            b"content-type: application/octet-stream\r\n\r\n" + b"y" * (2 * MiB))

    async def client(port: int, seen: Seen) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(upload_head("/form", len(part) + 100,
                                 b"multipart/form-data; boundary=" + boundary) + part)
        await writer.drain()
        await seen.started.wait()
        await asyncio.sleep(0.05)  # let the server spool part of the file
        writer.close()
        await writer.wait_closed()

    run_case(client)


def test_completed_multipart_upload_is_freed(no_gc: None) -> None:
    body = (b"--cut\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
            b"\r\n" + b"y" * (2 * MiB) + b"\r\n--cut--\r\n")

    async def client(port: int, seen: Seen) -> None:
        await exchange(port, upload_head("/form", len(body), b"multipart/form-data; boundary=cut")
                       + body, until=str(2 * MiB).encode())

    run_case(client)


def test_aborted_event_stream_is_freed(no_gc: None) -> None:
    async def client(port: int, seen: Seen) -> None:
        await exchange(port, b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n", until=b"first")

    run_case(client)




def test_response_with_callbacks_that_capture_it_is_freed(no_gc: None) -> None:
    """socketify-style code registers closures over ``res`` (on_aborted, on_writable,
    on_data): the response must let go of them when it ends, or each is a cycle."""

    async def client(port: int, seen: Seen) -> None:
        await exchange(port, upload_head("/closures", 10) + b"0123456789", until=b"10")

    run_case(client)


def test_websocket_is_freed(no_gc: None) -> None:
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    mask = b"\x01\x02\x03\x04"
    hello = b"\x81\x85" + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(b"hello"))

    async def client(port: int, seen: Seen) -> None:
        await exchange(port, b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n"
                       b"connection: upgrade\r\nsec-websocket-version: 13\r\n"
                       b"sec-websocket-key: " + key + b"\r\n\r\n" + hello, until=b"hello")

    run_case(client)
