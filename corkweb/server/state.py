"""What every connection of one server shares: built once when the server starts.

The server layer knows the application only through two callables — ``handler(res, req)`` and
``error_handler(exc, res, req)`` — and an opaque ``ResponseOptions``; it never imports the app
or the router (STYLE.md rule 2).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from ..wire.limits import Limits
from ..wire.writer import date_line
from .corker import Corker

__all__ = ["ServerState", "Handler", "ErrorHandler"]

Handler = Callable[[Any, Any], Any]
ErrorHandler = Callable[[BaseException, Any, Any], Any]

# Python 3.12 can run a task's first step at creation (eager_start): an async handler that
# never awaits then answers inside the read that carried its request, as a sync one does.
EAGER_TASKS = sys.version_info >= (3, 12)


class ServerState:
    """Shared by the connections of one listening server."""

    __slots__ = (
        "loop", "clock", "corker", "handler", "error_handler", "options", "limits", "connections",
        "draining", "request_class", "_response_class", "new_response", "upgrade_handler",
        "on_empty", "tick",
        "date", "_clock", "ticking", "_sweeper",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handler: Handler,
        *,
        error_handler: ErrorHandler | None = None,
        options: Any = None,
        limits: Limits | None = None,
        request_class: type | None = None,
        response_class: type | None = None,
        upgrade_handler: Callable[..., Any] | None = None,
        clock: Any = None,
    ) -> None:
        from ..wire.parser import RequestHead
        from .exchange import Exchange, ExchangeOptions

        self.loop = loop
        #: What the timeouts are timed with: ``call_later(delay, fn)`` (and ``time()``). The
        #: loop itself, or ``corkweb.testing.FakeClock`` in tests that move time by hand.
        self.clock = clock if clock is not None else loop
        self.corker = Corker(loop)
        self.handler = handler
        self.error_handler = error_handler
        self.options = options if options is not None else ExchangeOptions()
        self.limits = limits = limits if limits is not None else Limits()
        #: How often each connection's timer looks at it: half the shortest timeout.
        self.tick = max(0.01, min(limits.keepalive_timeout, limits.head_timeout,
                                  limits.body_timeout, limits.send_timeout) / 2)
        #: The classes each connection builds per request (the app hands in its own:
        #: ``corkweb.Request`` and ``corkweb.Response``); the server's own by default.
        self.request_class = request_class or RequestHead
        self.response_class = response_class or Exchange
        #: Called as ``upgrade_handler(conn, res, data)`` when a handler accepted an upgrade.
        self.upgrade_handler = upgrade_handler
        self.connections: set[Any] = set()
        #: Set by a graceful shutdown: responses close their connections, idle ones close now.
        self.draining = False
        #: A future the shutdown awaits; resolved whenever a connection closes while draining.
        self.on_empty: asyncio.Future[None] | None = None
        #: The current ``date:`` header line, refreshed each second while connections exist.
        self.date = date_line()
        self._clock: asyncio.TimerHandle | None = None
        #: HTTP connections whose timeouts the sweep checks each tick.
        self.ticking: set[Any] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def response_class(self) -> type:
        """The class of the exchanges the connections build (``new_response`` makes them)."""
        return self._response_class

    @response_class.setter
    def response_class(self, cls: type) -> None:
        from .exchange_state import exchange_factory

        self._response_class = cls
        #: ``new_response(conn, req)``: a new ``response_class`` (see ``exchange_factory``).
        self.new_response = exchange_factory(cls)

    def watch(self, conn: Any) -> None:
        """Have ``conn._on_tick()`` called every :attr:`tick` until :meth:`unwatch`."""
        self.ticking.add(conn)
        if self._sweeper is None:
            self._sweeper = self.clock.call_later(self.tick, self._sweep)

    def unwatch(self, conn: Any) -> None:
        self.ticking.discard(conn)

    def _sweep(self) -> None:
        # One timer for every HTTP connection instead of a timer each: an idle keep-alive
        # connection holds 0.6 KiB less (3.33 -> 2.70 KiB, `python -m benchmarks --workloads
        # conn-memory`), and a request still costs nothing. Runs only while connections
        # exist: idle CPU stays zero.
        self._sweeper = None
        for conn in list(self.ticking):
            conn._on_tick()
        if self.ticking:
            self._sweeper = self.clock.call_later(self.tick, self._sweep)
            self.start_clock()

    def start_clock(self) -> None:
        """Keep :attr:`date` fresh while there are connections (no timer when idle)."""
        if self._clock is None:
            self._refresh_date()

    def _refresh_date(self) -> None:
        # PERF: responses read this attribute instead of calling date_line() (which reads the
        # time): 400 instructions less per response.
        now = time.time()
        self.date = date_line(now)
        if self.connections:
            self._clock = self.clock.call_later(1.0 - now % 1.0 + 0.0005, self._refresh_date)
        else:
            self._clock = None
