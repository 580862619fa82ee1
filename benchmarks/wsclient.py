"""A WebSocket echo load client on raw asyncio transports (uvloop when installed).

Each of ``connections`` connections keeps ``window`` text messages in flight: every echo
that comes back is answered by a new message, sent in one write with the others of the
same read. Client frames are built once (masked with a fixed key, which servers accept),
and echoes of the expected size are counted by comparing bytes, so the client spends far
less CPU per message than any server does and can saturate it from one core.
"""
from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable

from benchmarks.loadgen import new_loop

MESSAGE = b"Hello, World!"
_MASK = b"\x12\x34\x56\x78"


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455 §5.2); payloads under 64 KiB."""
    n = len(payload)
    size = bytes([0x80 | n]) if n < 126 else b"\xfe" + struct.pack("!H", n)
    head = bytes([0x80 | opcode]) + size
    masked = bytes(b ^ _MASK[i % 4] for i, b in enumerate(payload))
    return head + _MASK + masked


def server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """The unmasked frame a server sends for ``payload`` (for the fast byte comparison)."""
    return bytes([0x80 | opcode, len(payload)]) + payload


class _Stats:
    def __init__(self) -> None:
        self.messages = 0
        self.bad = 0
        self.errors = 0
        self.sending = False


class _WsEcho(asyncio.Protocol):
    def __init__(self, host: str, port: int, path: str, window: int, stats: _Stats) -> None:
        self.stats = stats
        self.window = window
        self.frame = client_frame(MESSAGE)
        self.echo = server_frame(MESSAGE)
        self.buf = b""
        self.handshaken = False
        self.pending = 0
        key = base64.b64encode(os.urandom(16)).decode()
        self.handshake = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.idle = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.handshake)  # type: ignore[attr-defined]

    def start(self) -> None:
        self.pending = self.window
        self.transport.write(self.frame * self.window)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                status = buf[:end].split(b"\r\n", 1)[0].decode("latin-1")
                self.ready.set_exception(ConnectionError(f"handshake refused: {status}"))
                self.transport.close()
                return
            self.handshaken = True
            self.ready.set_result(None)
            buf = buf[end + 4 :]
        size = len(self.echo)
        n = len(buf) // size
        if n and buf[: n * size] == self.echo * n:  # PERF: the usual case, no frame parsing
            buf = buf[n * size :]
        else:
            n, buf = self._parse(buf)
        self.buf = buf
        if n:
            self._answered(n)

    def _parse(self, buf: bytes) -> tuple[int, bytes]:
        """Frame by frame: count data frames, answer pings; return (count, leftover)."""
        count = 0
        while len(buf) >= 2:
            opcode, length, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, pos = struct.unpack("!H", buf[2:4])[0], 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, pos = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < pos + length:
                break
            payload, buf = buf[pos : pos + length], buf[pos + length :]
            if opcode in (0x1, 0x2):
                count += 1
                if payload != MESSAGE:
                    self.stats.bad += 1
            elif opcode == 0x9:  # ping
                self.transport.write(client_frame(payload, 0xA))  # type: ignore[attr-defined]
            elif opcode == 0x8:  # close
                self.transport.close()
        return count, buf

    def _answered(self, n: int) -> None:
        self.stats.messages += n
        self.pending -= n
        if self.stats.sending:
            self.pending += n
            self.transport.write(self.frame * n)  # type: ignore[attr-defined]
        elif self.pending <= 0 and not self.idle.done():
            self.idle.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed during the handshake"))
        elif self.pending > 0:
            self.stats.errors += 1
        if not self.idle.done():
            self.idle.set_result(None)


async def _echo_load(host, port, path, connections, window, seconds, on_start) -> dict:
    loop = asyncio.get_running_loop()
    stats = _Stats()
    clients: list[_WsEcho] = []
    for _ in range(connections):
        _, proto = await loop.create_connection(
            lambda: _WsEcho(host, port, path, window, stats), host, port
        )
        clients.append(proto)
    await asyncio.gather(*(c.ready for c in clients))
    on_start()
    stats.sending = True
    started = time.perf_counter()
    for c in clients:
        c.start()
    await asyncio.sleep(seconds)
    stats.sending = False  # then wait for the messages in flight: all are counted
    await asyncio.wait([c.idle for c in clients], timeout=10)
    elapsed = time.perf_counter() - started
    for c in clients:
        c.transport.write(client_frame(struct.pack("!H", 1000), 0x8))  # type: ignore[attr-defined]
        c.transport.close()
    await asyncio.sleep(0.05)
    return {
        "requests": stats.messages,
        "seconds": elapsed,
        "rps": stats.messages / elapsed,
        "latency_ms": {},
        "non_2xx": stats.bad,
        "socket_errors": {"read": stats.errors} if stats.errors else {},
    }


def echo_load(
    host: str,
    port: int,
    path: str = "/ws",
    *,
    seconds: float,
    connections: int = 64,
    window: int = 16,
    on_start: Callable[[], None] = lambda: None,
) -> dict:
    """Echo messages for ``seconds``; same result keys as ``benchmarks.wrk.run``
    (``requests`` counts messages; ``non_2xx`` counts echoes that came back wrong)."""
    loop = new_loop()
    try:
        return loop.run_until_complete(
            _echo_load(host, port, path, connections, window, seconds, on_start)
        )
    finally:
        loop.close()
