"""An exchange's state: its :class:`Phase` machine, and the fields every exchange has.

The fields live in :class:`ExchangeBase`, which is the C core's type when it is built (see
``server/speedups.py``) and :class:`_PyExchangeBase` otherwise; ``server/exchange.py`` builds
:class:`~corkweb.server.exchange.Exchange` on it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from ..wire.headers import Headers
from ..wire.parser import RequestHead
from ..wire.speedups import core as wire_core
from ..wire.writer import status_line
from .speedups import core

if TYPE_CHECKING:
    from .exchange import ExchangeConnection

__all__ = ["ABORTED", "DONE", "MOVES", "PENDING", "STREAMING", "ExchangeBase", "Phase"]


class Phase(IntEnum):
    """Where an exchange stands (an ``IntEnum``: ordered, and cheap to compare)."""

    PENDING = 0  # nothing sent: status and headers may still change
    STREAMING = 1  # the head and part of the body are out
    DONE = 2  # the whole answer is queued for the client
    ABORTED = 3  # the client went away (or the connection was cut): writes are dropped


PENDING, STREAMING, DONE, ABORTED = Phase.PENDING, Phase.STREAMING, Phase.DONE, Phase.ABORTED

#: The legal moves: ``MOVES[phase]`` is where an exchange in ``phase`` may go next.
MOVES: dict[Phase, frozenset[Phase]] = {
    PENDING: frozenset((STREAMING, DONE, ABORTED)),
    STREAMING: frozenset((DONE, ABORTED, PENDING)),  # PENDING: retract_head
    DONE: frozenset((ABORTED,)),
    ABORTED: frozenset(),
}
# MOVES as a matrix of booleans indexed by the phases' values (the cheapest check).
CAN_MOVE = tuple(tuple(to in MOVES[frm] for to in Phase) for frm in Phase)


#: The default content-type lines of ``str`` and JSON bodies, and the 200 status line.
TEXT_LINE = b"content-type: text/plain; charset=utf-8\r\n"
JSON_LINE = b"content-type: application/json\r\n"
STATUS_200 = status_line(200)


class _PyExchangeBase:
    """The fields every exchange has (the pure-Python twin of ``_speedups.ExchangeBase``)."""

    _conn: ExchangeConnection
    request: RequestHead
    phase: Phase
    _status: bytes
    _code: int
    _headers: Headers | None
    _before_head: list[Callable[[Any], Any]] | None
    _on_finish: list[Callable[[Any], Any]] | None
    closing: bool
    body_done: bool
    defer_done: bool

    def __init__(self, conn: ExchangeConnection, req: RequestHead) -> None:
        self._conn = conn
        #: The request this exchange answers.
        self.request = req
        self.phase = PENDING
        self._status = STATUS_200
        self._code = 200
        # PERF: set here though None is the common value: end() reads them on every response,
        # and an instance attribute is read faster than a class one (CPython 3.11; the two
        # hook lists: 16 pipelined, -260 instructions a request).
        self._headers = None
        self._before_head = self._on_finish = None
        #: True when the connection closes after this answer.
        self.closing = False
        self.body_done = not req.has_body
        #: True while the connection that dispatched this exchange calls ``response_done``
        #: itself once the handler returns (``end`` then leaves it to the connection).
        self.defer_done = False


# PERF: with the C core (server/speedups.py), the exchange's fields and end()'s common case
# are C (see _speedups.c for what that case is; the rest is Exchange._end_general, in both):
# 16 pipelined, 18.8k -> 16.8k instructions a request (in-process, callgrind).
if TYPE_CHECKING:
    ExchangeBase = _PyExchangeBase
else:
    ExchangeBase = _PyExchangeBase if core is None else core.ExchangeBase
if core is not None:
    core.configure_exchange(PENDING, DONE, STATUS_200, TEXT_LINE, JSON_LINE,
                            None if wire_core is None else wire_core.HeadBase)


def exchange_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
    """What makes an exchange of ``cls`` from ``(conn, req)``: ``cls`` itself, or with the C core
    ``cls.make``, which does the same without the generic type call.

    PERF: 16 pipelined, 14.6k -> 14.2k instructions a request (in-process, callgrind).
    """
    if core is not None and issubclass(cls, core.ExchangeBase):
        make: Callable[[Any, Any], Any] = cls.make
        return make
    return cls
