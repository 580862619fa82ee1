"""Pub/sub fan-out: server CPU µs per *delivered* message (DESIGN.md §5, goal ≤ 0.75 µs).

    python -m benchmarks.fanout                       # corkweb and socketify.py, 100 subscribers
    python -m benchmarks.fanout --servers corkweb --subscribers 100 -d 5

The server (pinned to CPU 0) has two WebSocket routes in its benchmark app: ``/sub``
subscribes to topic ``fanout`` on open, ``/pub`` publishes every message it receives to that
topic. This client (pinned to CPU 1) opens the subscribers, then one publisher that keeps a
window of messages in flight: it sends more only when the slowest subscriber has caught up,
so nothing piles up in the server's buffers. The figure is the server's CPU time over the
run divided by the messages all subscribers received.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import procstat
from benchmarks.loadgen import new_loop
from benchmarks.servers import HOST, SERVERS, RunningServer, missing
from benchmarks.wsclient import MESSAGE, client_frame, server_frame

FRAME = server_frame(MESSAGE)


class _Peer(asyncio.Protocol):
    """A WebSocket client that counts the frames it receives (all are ``FRAME``)."""

    def __init__(self, path: str, port: int) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.handshake = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.ready = asyncio.get_running_loop().create_future()
        self.received = 0
        self.rest = 0  # bytes of a frame split across reads
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.handshake)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if not data.startswith(b"HTTP/1.1 101") or end < 0:
                self.ready.set_exception(RuntimeError(f"handshake refused: {data[:80]!r}"))
                return
            self.open = True
            self.ready.set_result(None)
            data = data[end + 4:]
        total = self.rest + len(data)
        self.received += total // len(FRAME)
        self.rest = total % len(FRAME)


async def _run(port: int, subscribers: int, seconds: float, window: int,
               server_pid: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    subs = []
    for _ in range(subscribers):
        _, peer = await loop.create_connection(lambda: _Peer("/sub", port), HOST, port)
        subs.append(peer)
    await asyncio.gather(*(p.ready for p in subs))
    _, pub = await loop.create_connection(lambda: _Peer("/pub", port), HOST, port)
    await pub.ready
    frame = client_frame(MESSAGE)
    sent = 0
    before = procstat.cpu_seconds(server_pid)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        slowest = min(p.received for p in subs)
        if sent - slowest < window:
            pub.transport.write(frame * 16)  # type: ignore[attr-defined]
            sent += 16
        await asyncio.sleep(0)  # let the subscribers read
    deadline = time.monotonic() + 5  # wait for what is in flight
    while min(p.received for p in subs) < sent and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    used = procstat.cpu_seconds(server_pid) - before
    elapsed = time.monotonic() - start
    delivered = sum(p.received for p in subs)
    for p in (*subs, pub):
        p.transport.close()
    return {"published": sent, "delivered": delivered, "cpu_s": used,
            "us_per_delivered": used * 1e6 / max(delivered, 1),
            "delivered_per_s": delivered / elapsed}


def measure(name: str, subscribers: int, seconds: float, window: int) -> dict[str, float]:
    """Start ``name``'s benchmark app and measure fan-out; raises when it cannot run."""
    server = SERVERS[name]
    why = missing(server)
    if why:
        raise RuntimeError(why)
    with tempfile.TemporaryDirectory() as static, \
            RunningServer(server, cpu=0, static_dir=Path(static)) as running:
        running.wait_ready()
        loop = new_loop()
        try:
            return loop.run_until_complete(
                _run(running.port, subscribers, seconds, window, running.pid))
        finally:
            loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="corkweb,socketify")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=64, help="messages in flight")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the client on CPU 1, the server on CPU 0
    for name in args.servers.split(","):
        try:
            r = measure(name, args.subscribers, args.duration, args.window)
        except Exception as exc:  # one server failing must not hide the others' figures
            print(f"{SERVERS[name].label:22} FAILED: {exc}")
            continue
        print(f"{SERVERS[name].label:22} {args.subscribers} subscribers: "
              f"{r['delivered_per_s']:,.0f} delivered/s, "
              f"{r['us_per_delivered']:.3f} µs server CPU per delivered message "
              f"({r['published']:,} published, {r['delivered']:,} delivered)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
