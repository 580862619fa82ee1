"""Tier 2 helpers: an HTTP connection on a recording transport, no sockets."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from corkweb import App, Request, Response
from corkweb.server.http import HTTPConnection
from corkweb.server.state import ServerState
from corkweb.wire.limits import Limits

_sequence = itertools.count()


class RecordingTransport:
    """Records each ``write()`` (with a global sequence number, to check order across
    connections) and the flow-control calls."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.order: list[int] = []
        self.closed = False
        self.aborted = False
        self.reading = True
        self.buffer_size = 0

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))
        self.order.append(next(_sequence))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high_water = high

    def get_write_buffer_size(self) -> int:
        return self.buffer_size

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


def connect(app: App | Any, loop: asyncio.AbstractEventLoop, limits: Limits | None = None,
            state: ServerState | None = None) -> tuple[HTTPConnection, RecordingTransport]:
    """A connection to ``app`` (an App, or a bare ``handler(res, req)``) on a fake transport."""
    if state is None:
        if isinstance(app, App):
            app.freeze()
            state = ServerState(loop, app.handle, error_handler=app._errors,
                                options=app._options, limits=limits or app.limits,
                                request_class=Request, response_class=Response)
        else:
            state = ServerState(loop, app, limits=limits, request_class=Request,
                                response_class=Response)
    conn = HTTPConnection(state)
    transport = RecordingTransport()
    conn.connection_made(transport)
    return conn, transport


def get(path: str = "/", extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n"


async def settle(loop: asyncio.AbstractEventLoop, ticks: int = 5) -> None:
    """Let a few loop iterations run (tasks started by the handlers take their steps)."""
    for _ in range(ticks):
        await asyncio.sleep(0)
