"""The floor: the least a uvloop + httptools server can do per request.

A bare ``asyncio.Protocol`` that parses with httptools and answers each request with a
prebuilt reply chosen by exact path, gathering every reply of one read into one write. No
routing, no request or response objects, no headers read: whatever a framework on this
architecture adds is measured against this. Only the plaintext, JSON and route-parameter
paths are served (anything else is a fixed 404), so only those workloads run on it.

Run from the repository root: ``python -m benchmarks.apps.floor_app PORT``.
"""
from __future__ import annotations

import asyncio
import signal
from email.utils import formatdate

import httptools
import uvloop

from benchmarks.apps.common import HOST, port


def _reply(ctype: bytes, body: bytes, status: bytes = b"200 OK") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nServer: floor\r\nDate: " + _DATE
            + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


# A fixed Date header: the floor does not even keep a clock (a real server must).
_DATE = formatdate(usegmt=True).encode()
REPLIES = {
    b"/plaintext": _reply(b"text/plain", b"Hello, World!"),
    b"/json": _reply(b"application/json", b'{"message":"Hello, World!"}'),
    b"/user/42": _reply(b"text/plain", b"User 42"),
}
NOT_FOUND = _reply(b"text/plain", b"Not Found", b"404 Not Found")


class Floor(asyncio.Protocol):
    __slots__ = ("transport", "parser", "out")

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def on_url(self, url: bytes) -> None:
        self.out.append(REPLIES.get(url, NOT_FOUND))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()
            return
        out = self.out
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Floor, HOST, port(), backlog=2048)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    uvloop.run(main())
