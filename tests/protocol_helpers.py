"""Tier 2 helpers: an HTTP connection on a recording transport, no sockets.

The transport, the fake clock and ``connect`` are the public ones of ``corkweb.testing``;
this module adds the request builder and the loop settling the protocol tests share."""

from __future__ import annotations

import asyncio

from corkweb.testing import FakeClock, RecordingTransport, connect, server_state

__all__ = ["FakeClock", "RecordingTransport", "connect", "server_state", "get", "settle"]


def get(path: str = "/", extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n"


async def settle(loop: asyncio.AbstractEventLoop, ticks: int = 5) -> None:
    """Let a few loop iterations run (tasks started by the handlers take their steps)."""
    for _ in range(ticks):
        await asyncio.sleep(0)
