"""Python clients: an HTTP load generator for when wrk is missing, and idle connections.

Both run on asyncio (uvloop when it is installed) in the runner's own process, which the
runner pins to the client CPU. The load generator keeps ``connections`` keep-alive
connections busy, each with ``pipeline`` requests in flight, and understands responses
framed by Content-Length or chunked encoding: enough for the benchmark workloads.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

try:
    import uvloop
except ImportError:  # pragma: no cover - the stock loop is only slower
    uvloop = None


def new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop else asyncio.new_event_loop()


def build_request(host: str, port: int, method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: corkweb-bench\r\n"
    if body or method == "POST":
        head += f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


class _Stats:
    def __init__(self) -> None:
        self.responses = 0
        self.non_2xx = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.sending = True


class _HttpClient(asyncio.Protocol):
    """One keep-alive connection that sends ``depth`` requests, reads as many responses."""

    def __init__(self, request: bytes, depth: int, stats: _Stats) -> None:
        self.request = request * depth
        self.depth = depth
        self.stats = stats
        self.buf = bytearray()
        self.skip = 0  # bytes of a response body still to come
        self.skipped_ok = True
        self.pending = 0
        self.sent_at = 0.0
        self.idle = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        if not self.stats.sending:
            if not self.idle.done():
                self.idle.set_result(None)
            return
        self.pending = self.depth
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.skip:  # PERF: the rest of a large body is counted, not buffered
            if len(data) < self.skip:
                self.skip -= len(data)
                return
            data = data[self.skip :]
            self.skip = 0
            self._answered(self.skipped_ok)
        self.buf += data
        while self.pending:
            size = _response_size(self.buf)
            if size is None:
                return
            ok = self.buf.startswith(b"HTTP/1.1 2")
            if size > len(self.buf):  # head complete, body still to come
                self.skip, self.skipped_ok = size - len(self.buf), ok
                self.buf.clear()
                return
            del self.buf[:size]
            self._answered(ok)

    def _answered(self, ok: bool) -> None:
        if not ok:
            self.stats.non_2xx += 1
        self.pending -= 1
        self.stats.responses += 1
        self.stats.latencies.append(time.perf_counter() - self.sent_at)
        if not self.pending:
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stats.sending:
            self.stats.errors += 1
        if not self.idle.done():
            self.idle.set_result(None)


def _response_size(buf: bytearray) -> int | None:
    """Length of the first response in ``buf``: known once its head is there if it has a
    Content-Length (it may then exceed ``len(buf)``), else once it is complete; None until
    then."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    start = end + 4
    i = head.find(b"\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r", i + 1)
        return start + int(head[i + 16 : j if j > 0 else None])
    if b"\ntransfer-encoding: chunked" in head:
        pos = start
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2 + size + 2
            if len(buf) < pos:
                return None
            if size == 0:
                return pos
    return start  # no body (e.g. 204, 304)


async def _http_load(host, port, request, connections, pipeline, seconds, on_start) -> dict:
    loop = asyncio.get_running_loop()
    stats = _Stats()
    stats.sending = False  # every connection is made before the clock starts
    clients = []
    for _ in range(connections):
        _, proto = await loop.create_connection(
            lambda: _HttpClient(request, pipeline, stats), host, port
        )
        proto.idle = loop.create_future()
        clients.append(proto)
    on_start()
    stats.sending = True
    started = time.perf_counter()
    for c in clients:
        c._send()
    await asyncio.sleep(seconds)
    stats.sending = False
    await asyncio.wait([c.idle for c in clients], timeout=10)
    elapsed = time.perf_counter() - started
    for c in clients:
        c.transport.close()
    lat = sorted(stats.latencies)
    pct = {f"p{p}": lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e3 for p in (50, 75, 90, 99)}
    return {
        "requests": stats.responses,
        "seconds": elapsed,
        "rps": stats.responses / elapsed,
        "latency_ms": pct if lat else {},
        "non_2xx": stats.non_2xx,
        "socket_errors": {"read": stats.errors} if stats.errors else {},
    }


def http_load(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    seconds: float,
    connections: int = 64,
    pipeline: int = 1,
    body: bytes = b"",
    on_start: Callable[[], None] = lambda: None,
) -> dict:
    """Load ``path`` for ``seconds``; same result keys as ``benchmarks.wrk.run``."""
    request = build_request(host, port, method, path, body)
    loop = new_loop()
    try:
        return loop.run_until_complete(
            _http_load(host, port, request, connections, pipeline, seconds, on_start)
        )
    finally:
        loop.close()


class _IdleClient(asyncio.Protocol):
    def __init__(self, request: bytes) -> None:
        self.request = request
        self.buf = bytearray()
        self.answered = asyncio.get_running_loop().create_future()
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.open = True
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        size = _response_size(self.buf)
        if not self.answered.done() and size is not None and size <= len(self.buf):
            self.answered.set_result(self.buf.startswith(b"HTTP/1.1 2"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.answered.done():
            self.answered.set_result(False)


async def _idle(host, port, request, count, batch, measure) -> dict:
    loop = asyncio.get_running_loop()
    clients: list[_IdleClient] = []
    failed = 0
    started = time.perf_counter()
    for first in range(0, count, batch):
        n = min(batch, count - first)
        made = await asyncio.gather(
            *(loop.create_connection(lambda: _IdleClient(request), host, port) for _ in range(n)),
            return_exceptions=True,
        )
        new = [m[1] for m in made if not isinstance(m, BaseException)]
        failed += n - len(new)
        clients += new
        if new:
            await asyncio.wait([c.answered for c in new], timeout=5)
        if not any(c.answered.done() for c in new):
            break  # the server takes no more connections (or answers none): stop there
    held = [c for c in clients if c.answered.done() and c.answered.result() and c.open]
    for c in clients:
        if c not in held:
            c.transport.close()  # unanswered or refused: not counted, not kept
    failed += len(clients) - len(held)
    await asyncio.sleep(0.2)
    value = measure()
    still_open = sum(1 for c in held if c.open)
    for c in held:
        c.transport.close()
    await asyncio.sleep(0)
    return {
        "opened": len(held),
        "failed": failed,
        "open_at_measure": still_open,
        "setup_seconds": time.perf_counter() - started,
        "measured": value,
    }


def idle_connections(
    host: str, port: int, path: str, count: int, measure: Callable[[], int]
) -> dict:
    """Open ``count`` connections that each make one request and stay open, then call
    ``measure()`` while they are all still open (before any keep-alive timeout)."""
    loop = new_loop()
    try:
        request = build_request(host, port, "GET", path)
        return loop.run_until_complete(_idle(host, port, request, count, 100, measure))
    finally:
        loop.close()
