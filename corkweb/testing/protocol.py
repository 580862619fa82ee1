"""Protocol tests without sockets: an app's HTTP connection on a recording transport.

``conn, transport = connect(app, loop)`` serves ``app`` (an :class:`corkweb.App`, or a bare
``handler(res, req)``) on one connection whose writes are recorded; ``conn.data_received(...)``
feeds it bytes. With ``clock=FakeClock()`` its timeouts run on that clock, moved by
``clock.advance(seconds)``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..server.http import HTTPConnection
from ..server.state import ServerState
from ..wire.limits import Limits
from .clock import FakeClock
from .transport import RecordingTransport

__all__ = ["connect", "server_state"]


def server_state(app: Any, loop: asyncio.AbstractEventLoop, *, limits: Limits | None = None,
                 clock: FakeClock | None = None, upgrade_handler: Any = None) -> ServerState:
    """The shared state a connection to ``app`` needs (what ``app.run`` would build)."""
    from ..request import Request
    from ..response import Response

    if callable(getattr(app, "serving", None)):
        served = app.serving()
        return ServerState(loop, served.handler, error_handler=served.error_handler,
                           options=served.options, limits=limits or served.limits,
                           request_class=served.request_class,
                           response_class=served.response_class,
                           upgrade_handler=upgrade_handler, clock=clock)
    return ServerState(loop, app, limits=limits, request_class=Request,
                       response_class=Response, upgrade_handler=upgrade_handler, clock=clock)


def connect(app: Any, loop: asyncio.AbstractEventLoop, *, limits: Limits | None = None,
            clock: FakeClock | None = None, state: ServerState | None = None,
            ) -> tuple[HTTPConnection, RecordingTransport]:
    """A connection to ``app`` on a :class:`RecordingTransport` (``state`` to share one
    server between several connections)."""
    if state is None:
        state = server_state(app, loop, limits=limits, clock=clock)
    conn = HTTPConnection(state)
    transport = RecordingTransport()
    conn.connection_made(transport)
    return conn, transport
