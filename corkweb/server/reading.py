"""The reading side of an HTTP connection as a state machine: what a timeout means now.

The connection (``server/http.py``) is in one :class:`ReadPhase` at a time; the sweep looks at
it each tick to pick the timeout that applies (keep-alive, head deadline, body timeout, none).
:data:`READ_MOVES` lists the legal moves; ``HTTPConnection._enter`` refuses the others.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ReadPhase", "READ_MOVES", "CAN_MOVE", "IDLE", "HEAD", "BODY", "BUSY"]


class ReadPhase(IntEnum):
    """What the connection's reading side is doing: what a timeout means at this moment."""

    IDLE = 0  # between requests: the keep-alive timeout applies
    HEAD = 1  # a request head has begun: its total deadline applies (slowloris)
    BODY = 2  # a request body is arriving: the body timeout applies between chunks
    BUSY = 3  # the request was read; its answer is in the works (no read timeout)


IDLE, HEAD, BODY, BUSY = ReadPhase.IDLE, ReadPhase.HEAD, ReadPhase.BODY, ReadPhase.BUSY

#: The legal moves of the reading side. The parser reports a head only outside a body and the
#: end of a request only after its head, which is what excludes BODY -> HEAD/BODY.
READ_MOVES: dict[ReadPhase, frozenset[ReadPhase]] = {
    IDLE: frozenset((IDLE, HEAD, BODY, BUSY)),  # pipelined heads parse while idle
    HEAD: frozenset((HEAD, BODY, BUSY, IDLE)),  # -> IDLE: its deadline passed (408)
    BODY: frozenset((BUSY, IDLE)),  # -> IDLE: the body timed out (408)
    BUSY: frozenset((BUSY, IDLE, HEAD, BODY)),
}
# The same table as a matrix of booleans indexed by the phases' values (the cheapest check).
CAN_MOVE = tuple(tuple(to in READ_MOVES[frm] for to in ReadPhase) for frm in ReadPhase)
