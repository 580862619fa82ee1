"""One WebSocket of a hosted ASGI application, on corkweb's WebSocket connection.

The upgrade request reaches the hosted handler like any request. Its handshake is checked by
corkweb (a bad one is answered 400/426 before the app sees it); then the app runs as the
handler's task with a ``websocket`` scope. ``websocket.accept`` becomes ``res.upgrade(...)``
with a :class:`ASGIWebSocketRoute` as the socket context, so from the ``101`` on the connection
is corkweb's ``WebSocketConnection`` — frames parsed and written by corkweb's wire code, pings,
idle timeout, size limits, backpressure and the close handshake included — and its behaviours
(``open``/``message``/``drain``/``close``) feed the app's ``receive`` queue.

Before accepting, the app may deny the connection with an HTTP answer (the
``websocket.http.response`` extension) or ``websocket.close`` (answered 403). Sends from the app
go out through the WebSocket connection; between two loop ticks they leave in one write
(DESIGN.md §1 rule 3), and a send waits for ``drain`` while the client reads slower.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from enum import Enum
from typing import Any

from ..body import ClientDisconnected
from ..errors import HTTPError
from ..pubsub import PubSub
from ..websocket import SendStatus, WebSocketRoute
from ..wire.websocket import validate_handshake
from ..wire.writer import header_line

__all__ = ["serve_websocket", "ASGIWebSocketRoute", "WSPhase"]

log = logging.getLogger("corkweb.error")

#: Messages queued for an app that does not receive them, above which the socket stops being
#: read until it catches up (a client cannot fill the server's memory).
QUEUE_HIGH_WATER = 64


class WSPhase(Enum):
    CONNECTING = "connecting"  # the app has not answered the handshake
    OPEN = "open"  # accepted
    RESPONDING = "responding"  # denied with an HTTP answer still being sent
    CLOSED = "closed"  # closed by either side, or denied


C = WSPhase

#: Which message the app may send in which phase (STYLE rule 4).
TRANSITIONS: dict[tuple[WSPhase, str], WSPhase] = {
    (C.CONNECTING, "websocket.accept"): C.OPEN,
    (C.CONNECTING, "websocket.close"): C.CLOSED,
    (C.CONNECTING, "websocket.http.response.start"): C.RESPONDING,
    (C.RESPONDING, "websocket.http.response.body"): C.RESPONDING,  # CLOSED at the last part
    (C.OPEN, "websocket.send"): C.OPEN,
    (C.OPEN, "websocket.close"): C.CLOSED,
}


class ASGIWebSocketRoute(WebSocketRoute):
    """The socket context of hosted WebSockets: behaviours that feed the sessions, and the
    ``101`` with the headers of ``websocket.accept``."""

    def __init__(self) -> None:
        import orjson

        super().__init__("<asgi>", {
            "open": self._open, "message": self._message, "drain": self._drain,
            "close": self._close,
        }, PubSub(), orjson.dumps)

    def accept(self, res: Any, key: str, protocol: str | None, extensions: str | None,
               user_data: Any) -> tuple[bytes, Any]:
        head, info = super().accept(res, key, protocol, extensions, user_data)
        extra = user_data.accept_headers
        if extra:
            head = head[:-2] + b"".join(header_line(n, v) for n, v in extra) + b"\r\n"
        return head, info

    @staticmethod
    def _open(ws: Any) -> None:
        ws.get_user_data().opened(ws)

    @staticmethod
    def _message(ws: Any, data: str | bytes, opcode: int) -> None:
        session: WebSocketSession = ws.get_user_data()
        session.push({"type": "websocket.receive", "text": data} if isinstance(data, str)
                     else {"type": "websocket.receive", "bytes": data})

    @staticmethod
    def _drain(ws: Any) -> None:
        ws.get_user_data().wake()

    @staticmethod
    def _close(ws: Any, code: int, reason: str) -> None:
        ws.get_user_data().closed(code, reason)


class WebSocketSession:
    """``receive``/``send`` of one hosted WebSocket."""

    def __init__(self, res: Any, key: str, extensions: str, route: ASGIWebSocketRoute) -> None:
        self.res = res
        self.key = key
        self.extensions = extensions
        self.route = route
        self.phase = C.CONNECTING
        self.ws: Any = None
        self.inbox: deque[dict[str, Any]] = deque([{"type": "websocket.connect"}])
        self.waiter: asyncio.Future[None] | None = None
        self.accept_headers: list[tuple[Any, Any]] = []
        self.paused = False
        self.gone = False  # the client left or the close handshake ended
        res.on_aborted(self._aborted)

    # -- from the connection ------------------------------------------------------------------

    def opened(self, ws: Any) -> None:
        self.ws = ws

    def push(self, message: dict[str, Any]) -> None:
        self.inbox.append(message)
        if len(self.inbox) > QUEUE_HIGH_WATER and not self.paused and self.ws is not None:
            self.paused = True
            self.ws.pause()
        self.wake()

    def closed(self, code: int, reason: str) -> None:
        if not self.gone:
            self.gone = True
            self.inbox.append({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.phase is C.OPEN:
            self.phase = C.CLOSED
        self.wake()

    def _aborted(self, res: Any) -> None:
        self.closed(1006, "")

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        await waiter

    # -- the app's side -------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        inbox = self.inbox
        while not inbox:
            if self.gone:
                return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
            await self._wait()
        message = inbox.popleft()
        if self.paused and len(inbox) < QUEUE_HIGH_WATER // 2:
            self.paused = False
            self.ws.resume()
        return message

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        phase = self.phase
        nxt = TRANSITIONS.get((phase, kind))
        if nxt is None:
            if self.gone or phase is C.CLOSED:
                raise ClientDisconnected(f"{kind!r} on a closed WebSocket")
            raise RuntimeError(f"unexpected ASGI message {kind!r} in WebSocket state "
                               f"{phase.value}")
        res = self.res
        if kind == "websocket.send":
            await self._send_data(message)
        elif kind == "websocket.accept":
            if res.aborted:
                raise ClientDisconnected("the client left before the WebSocket was accepted")
            self.accept_headers = list(message.get("headers") or ())
            self.phase = C.OPEN
            res.upgrade(self.key, message.get("subprotocol"), self.extensions, self.route,
                        self)
        elif kind == "websocket.close":
            self.phase = C.CLOSED
            if phase is C.CONNECTING:
                # Closing before accepting denies the handshake (ASGI: HTTP 403).
                res.write_status(403).end("403 Forbidden: the application refused the "
                                          "WebSocket\n")
                self.gone = True
            elif self.ws is not None:
                self.ws.end(message.get("code", 1000), message.get("reason") or "")
        elif kind == "websocket.http.response.start":
            self.phase = C.RESPONDING
            res.write_status(message["status"])
            for name, value in message.get("headers") or ():
                lname = name.lower()
                if lname not in (b"content-length", b"transfer-encoding", b"connection"):
                    res.write_header(name, value)
        else:  # websocket.http.response.body
            body = message.get("body", b"")
            if message.get("more_body", False):
                res.write(body)
            else:
                # The upgrade is not taken: HTTP/1.1 goes on (RFC 9110 §7.8), unless the
                # connection held bytes after the request (then it closes by itself).
                res.end(body)
                self.phase = C.CLOSED
                self.gone = True

    async def _send_data(self, message: dict[str, Any]) -> None:
        ws = self.ws
        if ws is None or self.gone:
            raise ClientDisconnected("the WebSocket is closed")
        text = message.get("text")
        data: str | bytes = text if text is not None else message.get("bytes") or b""
        status = ws.send(data)
        if status == SendStatus.DROPPED:
            raise ClientDisconnected("the WebSocket is closing")
        if status == SendStatus.BACKPRESSURE:
            await self._wait()  # drain, or the close, wakes it

    def finished(self) -> None:
        """The app returned: a handshake it never answered is refused, an open socket is
        closed normally (as uvicorn does)."""
        if self.phase is C.CONNECTING and not self.res.aborted:
            log.error("ASGI app returned without answering the WebSocket handshake; "
                      "answering 500")
            self.phase = C.CLOSED
            self.res.write_status(500).end("500 Internal Server Error\n")
        elif self.phase is C.OPEN and self.ws is not None:
            self.phase = C.CLOSED
            self.ws.end(1000)

    def failed(self, exc: BaseException) -> None:
        """The app raised after the handshake: log, close with 1011 (internal error)."""
        if isinstance(exc, ClientDisconnected) and self.gone:
            return
        log.error("exception in the ASGI WebSocket application", exc_info=exc)
        if self.phase is C.OPEN and self.ws is not None:
            self.phase = C.CLOSED
            self.ws.end(1011, "internal error")


async def run_websocket(app: Any, scope: dict[str, Any], session: WebSocketSession,
                        calls: Any) -> None:
    calls.active += 1
    try:
        await app(scope, session.receive, session.send)
    except Exception as exc:
        if session.phase is C.CONNECTING:
            raise  # nothing sent yet: the server answers 500 and logs it
        session.failed(exc)
        return
    finally:
        calls.done()
    session.finished()


def serve_websocket(handler: Any, res: Any, req: Any) -> Any:
    """The hosted handler's answer to an upgrade request."""
    try:
        handshake = validate_handshake(req.method, req.version, req.headers)
    except HTTPError:
        raise  # 400/426 before the app is called
    route = handler.ws_route
    if route is None:
        route = handler.ws_route = ASGIWebSocketRoute()
    session = WebSocketSession(res, handshake.key, handshake.extensions, route)
    scope = handler.scope(res, req, "websocket")
    del scope["method"]
    scope["subprotocols"] = handshake.protocols
    return run_websocket(handler.app, scope, session, handler.calls)
