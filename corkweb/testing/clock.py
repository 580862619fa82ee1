"""A fake clock for the server's timeouts: time moves only when a test says so.

Hand one to the server state (``ServerState(loop, handler, clock=FakeClock())`` or
:func:`corkweb.testing.connect`) and every timeout — keep-alive idle, the head deadline, the
body timeout, the send timeout, the drain's idle read, WebSocket idle pings and the close
handshake — is scheduled on it instead of the event loop. :meth:`FakeClock.advance` then runs
what is due, in order, at once: a timing test states durations and waits for none.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

__all__ = ["FakeClock", "FakeTimer"]


class FakeTimer:
    """What ``call_later`` returns (``asyncio.TimerHandle``'s ``cancel``/``cancelled``/``when``)."""

    __slots__ = ("_when", "_fn", "_args", "_cancelled")

    def __init__(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._when = when
        self._fn = fn
        self._args = args
        self._cancelled = False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


class FakeClock:
    """Timers on virtual time: ``call_later``/``call_at``/``time``, moved by :meth:`advance`."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._seq = itertools.count()
        self._timers: list[tuple[float, int, FakeTimer]] = []

    def time(self) -> float:
        return self._now

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any,
                context: Any = None) -> FakeTimer:
        timer = FakeTimer(when, fn, args)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any,
                   context: Any = None) -> FakeTimer:
        return self.call_at(self._now + delay, fn, *args)

    @property
    def pending(self) -> int:
        """Timers scheduled and not cancelled (an idle server keeps none)."""
        return sum(not timer.cancelled() for _, _, timer in self._timers)

    def advance(self, seconds: float) -> int:
        """Move time forward by ``seconds``, running every timer that falls due (those that
        the timers themselves schedule inside the window too); returns how many ran."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self._now + seconds
        ran = 0
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled():
                continue
            self._now = max(self._now, when)
            timer._cancelled = True  # it ran: cancelling it later is a no-op
            timer._fn(*timer._args)
            ran += 1
        self._now = target
        return ran
