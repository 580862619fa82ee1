"""The read timeouts of an HTTP connection, driven by the server's sweep.

Timeouts cost nothing per request. The server's sweep calls every connection's ``_on_tick``
every ``tick`` seconds (half the shortest timeout; ``ServerState.watch``), which looks at what
the connection is doing: the reading phase, how many requests it has seen, how many body chunks
arrived. If the same phase lasted past its limit — idle keep-alive, an unfinished head (a total
deadline, not reset by dripping bytes), a silent body — it acts; a client that reads nothing for
``send_timeout`` is dropped. A request only bumps a counter and sets the phase; a timeout fires
between its limit and its limit plus one tick. With no connections, nothing ticks: idle CPU is
zero.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import ProtocolError
from .reading import BODY, HEAD, IDLE, ReadPhase

if TYPE_CHECKING:
    from .corker import CorkedProtocol
    from .state import ServerState

__all__ = ["ReadDeadlines"]

log = logging.getLogger("corkweb.error")


class ReadDeadlines:
    """Mixed into ``HTTPConnection``: its timeouts, from the state it keeps for them."""

    if not TYPE_CHECKING:
        # No slots of its own (its state is in the connection's; two bases with slots cannot
        # be combined). Hidden from mypy, which would refuse the connection's assignments.
        __slots__ = ()
    else:  # what this part uses of the connection
        state: ServerState
        _closed: bool
        _write_paused: bool
        _phase: ReadPhase
        _activity: int
        _seen_phase: ReadPhase | None
        _seen_activity: int
        _ticks: int
        _stalled: int

        def remote_address(self) -> str | None: ...
        def abort_transport(self) -> None: ...
        def close_transport(self) -> None: ...
        def cork(self) -> CorkedProtocol | None: ...
        def uncork(self, prev: CorkedProtocol | None) -> None: ...
        def _protocol_error(self, exc: ProtocolError) -> None: ...
        def _enter(self, to: ReadPhase) -> None: ...

    def _on_tick(self) -> None:
        """Called by the server's sweep every ``tick`` seconds (ServerState.watch)."""
        if self._closed:
            return
        state = self.state
        phase = self._phase
        activity = self._activity
        # The same phase of the same request, with no body bytes since the last tick: older.
        if phase is self._seen_phase and activity == self._seen_activity:
            self._ticks += 1
        else:
            self._ticks = 0
            self._seen_phase = phase
            self._seen_activity = activity
        age = self._ticks * state.tick
        limits = state.limits
        if self._write_paused:
            self._stalled += 1
            # The first tick that sees the pause may come right after it began: the pause is
            # known to have lasted (stalled - 1) ticks, so the client is never dropped early.
            if (self._stalled - 1) * state.tick >= limits.send_timeout:
                log.info("dropping %s: it read nothing for %.0f s", self.remote_address(),
                         limits.send_timeout)
                self.abort_transport()
                return
        else:
            self._stalled = 0
        if phase is IDLE:
            if age >= limits.keepalive_timeout:
                self.close_transport()  # keep-alive idle: close quietly
                return
        elif phase is HEAD or phase is BODY:
            if age >= (limits.head_timeout if phase is HEAD else limits.body_timeout):
                self._timed_out(phase)

    def _timed_out(self, phase: ReadPhase) -> None:
        what = "request head" if phase is HEAD else "request body"
        log.info("timeout reading the %s from %s", what, self.remote_address())
        prev = self.cork()
        try:
            self._protocol_error(ProtocolError(408, f"timed out reading the {what}"))
        finally:
            self.uncork(prev)
        # If a handler still waits for the body that will not come, give it one keep-alive
        # period to answer before the connection is closed regardless.
        self._enter(IDLE)
        self._ticks = 0
