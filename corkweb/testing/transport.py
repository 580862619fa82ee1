"""A transport that records what the server writes: corking asserted by counting writes.

:class:`RecordingTransport` stands in for the socket under an HTTP or WebSocket connection.
Each ``write()`` is kept whole (``writes``), so a test says ``len(transport.writes) == 1`` for
"one syscall", and flow control is driven by hand (``buffer_size``, the protocol's
``pause_writing``/``resume_writing``).
"""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["RecordingTransport"]

_sequence = itertools.count()


class RecordingTransport:
    """Records each ``write()`` (with a global sequence number, to check the order across
    connections) and the flow-control calls."""

    def __init__(self, peer: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        self.writes: list[bytes] = []
        self.order: list[int] = []
        self.closed = False
        self.aborted = False
        self.reading = True
        self.buffer_size = 0
        self.high_water: int | None = None
        self.protocol: Any = None
        self._peer = peer

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

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, self.high_water or 0)

    def set_protocol(self, protocol: Any) -> None:
        """An upgrade hands the transport to another protocol (WebSocket)."""
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._peer if name == "peername" else default

    @property
    def data(self) -> bytes:
        """Everything written, joined."""
        return b"".join(self.writes)
