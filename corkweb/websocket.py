"""WebSockets as users see them: ``app.ws(path, behavior)``, the ``ws`` object, the enums.

A WebSocket route is a GET route like any other (route parameters and middleware apply); its
handler validates the handshake, then calls the ``upgrade`` behaviour or accepts on its own.
After the ``101`` the connection belongs to ``corkweb.server.websocket.WebSocketConnection``,
which calls the behaviours below — every one inside a cork scope, so ten ``ws.send`` in one
``message`` callback leave in one write (DESIGN.md §1 rule 1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from enum import IntEnum
from typing import Any

from .errors import HTTPError
from .proxy import packed_address
from .pubsub import PubSub
from .wire.websocket import (
    BINARY,
    CONTINUATION,
    TEXT,
    Handshake,
    SendStatus,
    accept_response,
    check_key,
    choose_protocol,
    encode_frame,
    negotiate_deflate,
    validate_handshake,
)

__all__ = ["OpCode", "SendStatus", "CompressOptions", "WebSocket", "WebSocketRoute",
           "UpgradeInfo"]

log = logging.getLogger("corkweb.error")

KiB = 1024
MiB = 1024 * KiB


class OpCode(IntEnum):
    """Frame opcodes (RFC 6455 §5.2), socketify's names."""

    CONTINUATION = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10


class CompressOptions(IntEnum):
    """socketify's compression settings. corkweb has one implementation — wsproto's
    permessage-deflate — so every value but ``DISABLED`` turns it on."""

    DISABLED = 0
    SHARED_COMPRESSOR = 1
    SHARED_DECOMPRESSOR = 1 << 8
    DEDICATED_DECOMPRESSOR_32KB = 15 << 8
    DEDICATED_DECOMPRESSOR_16KB = 14 << 8
    DEDICATED_DECOMPRESSOR_8KB = 13 << 8
    DEDICATED_DECOMPRESSOR_4KB = 12 << 8
    DEDICATED_DECOMPRESSOR_2KB = 11 << 8
    DEDICATED_DECOMPRESSOR_1KB = 10 << 8
    DEDICATED_DECOMPRESSOR_512B = 9 << 8
    DEDICATED_DECOMPRESSOR = 15 << 8
    DEDICATED_COMPRESSOR_3KB = 9 << 4 | 1
    DEDICATED_COMPRESSOR_4KB = 9 << 4 | 2
    DEDICATED_COMPRESSOR_8KB = 10 << 4 | 3
    DEDICATED_COMPRESSOR_16KB = 11 << 4 | 4
    DEDICATED_COMPRESSOR_32KB = 12 << 4 | 5
    DEDICATED_COMPRESSOR_64KB = 13 << 4 | 6
    DEDICATED_COMPRESSOR_128KB = 14 << 4 | 7
    DEDICATED_COMPRESSOR_256KB = 15 << 4 | 8
    DEDICATED_COMPRESSOR = 15 << 4 | 8


_BEHAVIORS = ("upgrade", "open", "message", "drain", "ping", "pong", "close", "subscription")
_SETTINGS = {
    "max_payload_length": 16 * MiB,
    "idle_timeout": 120,
    "max_backpressure": 1 * MiB,
    "close_on_backpressure_limit": False,
    "send_pings_automatically": True,
    "compression": 0,
    "allowed_origins": None,
    # socketify/uWebSockets settings. max_lifetime: minutes before the socket is closed
    # (1001), 0 = never. reset_idle_timeout_on_send is accepted and has no effect: the idle
    # timeout counts what the client sends, and automatic pings make a live client answer.
    "max_lifetime": 0,
    "reset_idle_timeout_on_send": False,
}


class UpgradeInfo:
    """What ``res.upgrade`` decided, handed to the server's WebSocket protocol."""

    __slots__ = ("route", "user_data", "protocol", "deflate", "remote_address")

    def __init__(self, route: WebSocketRoute, user_data: Any, protocol: str | None,
                 deflate: Any, remote_address: str | None) -> None:
        self.route = route
        self.user_data = user_data
        self.protocol = protocol
        self.deflate = deflate
        self.remote_address = remote_address

    def socket_for(self, conn: Any) -> WebSocket:
        """The ``ws`` object of the connection that takes over (the server calls this)."""
        return WebSocket(conn, self.route, self.user_data)


class WebSocketRoute:
    """The behaviour of one WebSocket path; also its decorator form.

    ``app.ws("/chat", {"message": fn, "max_payload_length": 1 << 20})`` or::

        chat = app.ws("/chat")

        @chat.on_message
        def message(ws, msg, opcode): ...
    """

    # Set from the behaviour dict (defaults in _SETTINGS) or by the decorators below.
    upgrade: Callable[..., Any] | None
    open: Callable[..., Any] | None
    message: Callable[..., Any] | None
    drain: Callable[..., Any] | None
    ping: Callable[..., Any] | None
    pong: Callable[..., Any] | None
    close: Callable[..., Any] | None
    subscription: Callable[..., Any] | None
    max_payload_length: int
    idle_timeout: float
    max_backpressure: int
    close_on_backpressure_limit: bool
    send_pings_automatically: bool
    compression: int
    allowed_origins: Iterable[str] | None
    max_lifetime: float
    reset_idle_timeout_on_send: bool

    def __init__(self, path: str, behavior: Mapping[str, Any] | None, pubsub: PubSub,
                 json_dumps: Callable[[Any], bytes]) -> None:
        self.path = path
        self.pubsub = pubsub
        self.json_dumps = json_dumps
        for name in _BEHAVIORS:
            setattr(self, name, None)
        for name, default in _SETTINGS.items():
            setattr(self, name, default)
        for key, value in (behavior or {}).items():
            if key in _BEHAVIORS:
                if value is not None and not callable(value):
                    raise TypeError(f"ws behavior {key!r} must be callable, got {value!r}")
            elif key not in _SETTINGS:
                raise ValueError(f"unknown ws behavior key {key!r} (known: "
                                 f"{', '.join(_BEHAVIORS + tuple(_SETTINGS))})")
            setattr(self, key, value)
        if self.max_lifetime < 0:
            raise ValueError("max_lifetime (minutes) must be 0 (off) or positive")
        if self.max_payload_length <= 0 or self.max_backpressure <= 0:
            raise ValueError("max_payload_length and max_backpressure must be positive")

    def __repr__(self) -> str:
        return f"<WebSocketRoute {self.path}>"

    # -- decorator form -------------------------------------------------------------------

    def _set(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(fn):
            raise TypeError(f"ws {name} handler is not callable: {fn!r}")
        setattr(self, name, fn)
        return fn

    def on_upgrade(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``upgrade(res, req, ctx)``: accept with ``res.upgrade(...)`` or answer an error."""
        return self._set("upgrade", fn)

    def on_open(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``open(ws)``."""
        return self._set("open", fn)

    def on_message(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``message(ws, msg, opcode)``: ``msg`` is ``str`` for text, ``bytes`` for binary."""
        return self._set("message", fn)

    def on_drain(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``drain(ws)``: everything buffered was sent after a BACKPRESSURE."""
        return self._set("drain", fn)

    def on_ping(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``ping(ws, payload)`` (the pong is sent automatically)."""
        return self._set("ping", fn)

    def on_pong(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``pong(ws, payload)``."""
        return self._set("pong", fn)

    def on_close(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``close(ws, code, reason)``: called once, whoever closed."""
        return self._set("close", fn)

    def on_subscription(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``subscription(ws, topic, new_count, old_count)``."""
        return self._set("subscription", fn)

    # -- the HTTP side ----------------------------------------------------------------------

    def handle(self, res: Any, req: Any, data: Any = None) -> Any:
        """The GET handler of the route: validate the handshake, then upgrade or reject.

        Without an ``upgrade`` behaviour, what the route's middleware returned (``data``)
        becomes ``ws.get_user_data()``; without middleware, the route parameters do
        (``{"room": "lobby"}`` for ``/chat/:room``), or ``None`` if it has none."""
        if not any(name == b"upgrade" for name, _ in _lower_names(req.headers)):
            raise HTTPError(426, "this URL is a WebSocket endpoint",
                            headers=[("upgrade", "websocket")])
        handshake = validate_handshake(req.method, req.version, req.headers,
                                       self.allowed_origins)
        res.upgrade_context = self
        res.upgrade_handshake = handshake
        if self.upgrade is None:
            if data is None:
                data = dict(req.params) or None
            res.upgrade(handshake.key, None, handshake.extensions, self, data)
            return None
        return self.upgrade(res, req, self)

    def accept(self, res: Any, key: str, protocol: str | None, extensions: str | None,
               user_data: Any) -> tuple[bytes, UpgradeInfo]:
        """Build the 101 answer for ``res.upgrade(...)`` (called by the response)."""
        handshake: Handshake | None = getattr(res, "upgrade_handshake", None)
        if handshake is None:  # res.upgrade on a route that is not a ws route
            req = res.request
            handshake = validate_handshake(req.method, req.version, req.headers,
                                           self.allowed_origins)
        key = key.decode("latin-1") if isinstance(key, bytes) else key
        check_key(key)
        chosen = choose_protocol(handshake.protocols, _text(protocol))
        if protocol and chosen is None:
            log.warning("ws %s: subprotocol %r was not offered by the client (offered: %r); "
                        "answering none", self.path, protocol, handshake.protocols)
        deflate, ext_header = None, ""
        if self.compression and extensions:
            deflate, ext_header = negotiate_deflate(_text(extensions) or "",
                                                    self.max_payload_length)
        head = accept_response(key, chosen, ext_header, res.date_line)
        info = UpgradeInfo(self, user_data, chosen, deflate, res.get_remote_address())
        return head, info


def _lower_names(headers: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[bytes, bytes]]:
    for name, value in headers:
        yield name.lower(), value


def _text(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


class WebSocket:
    """One open WebSocket, as handed to the behaviours (valid from ``open`` to ``close``)."""

    __slots__ = ("_conn", "_route", "_user_data", "_topics", "__weakref__")

    def __init__(self, conn: Any, route: WebSocketRoute, user_data: Any) -> None:
        self._conn = conn
        self._route = route
        self._user_data = user_data
        self._topics: list[str] = []

    def __repr__(self) -> str:
        return f"<WebSocket {self._route.path} {self._conn.remote_address()}>"

    # -- sending --------------------------------------------------------------------------

    def send(self, message: Any, opcode: int | None = None, compress: bool | None = None,
             fin: bool = True) -> SendStatus:
        """Send a message: ``str`` as text, ``bytes`` as binary, dict/list/… as JSON text.

        ``opcode`` overrides the type. ``compress=None`` compresses when the connection
        negotiated permessage-deflate. Returns SUCCESS, BACKPRESSURE or DROPPED.
        """
        cls = message.__class__
        if cls is str:
            payload = message.encode()
            op = TEXT
        elif cls is bytes:
            payload = message
            op = BINARY
        else:
            payload, op = self._encode(message)
        if opcode is not None:
            op = opcode
        return self._conn.send_message(payload, op, compress, fin)

    def _encode(self, message: Any) -> tuple[bytes, int]:
        if isinstance(message, (bytes, bytearray, memoryview)):
            return bytes(message), BINARY
        if isinstance(message, str):
            return message.encode(), TEXT
        if message is None:
            return b"", BINARY
        return self._route.json_dumps(message), TEXT

    def cork_send(self, message: Any, opcode: int | None = None,
                  compress: bool | None = None, fin: bool = True) -> SendStatus:
        """``send`` inside its own cork scope (useful outside callbacks, e.g. after await)."""
        conn = self._conn
        prev = conn.cork()
        try:
            return self.send(message, opcode, compress, fin)
        finally:
            conn.uncork(prev)

    def cork(self, callback: Callable[[WebSocket], Any]) -> WebSocket:
        """Run ``callback(ws)`` in a cork scope: all it sends leaves in one write."""
        if _is_coroutine_function(callback):
            raise TypeError("ws.cork() takes a plain function, not a coroutine function")
        conn = self._conn
        prev = conn.cork()
        try:
            callback(self)
        finally:
            conn.uncork(prev)
        return self

    # -- fragments (socketify's names): one message in several frames (RFC 6455 §5.4) -------
    # Nothing else may be sent to this socket between the first and the last fragment.

    def send_first_fragment(self, message: Any, opcode: int = BINARY,
                            compress: bool = False) -> SendStatus:
        """Start a fragmented message of type ``opcode``."""
        payload, _ = self._encode(message)
        return self._conn.send_message(payload, int(opcode), False, False)

    def send_fragment(self, message: Any, compress: bool = False) -> SendStatus:
        """Continue the fragmented message."""
        payload, _ = self._encode(message)
        return self._conn.send_message(payload, CONTINUATION, False, False)

    def send_last_fragment(self, message: Any, compress: bool = False) -> SendStatus:
        """End the fragmented message."""
        payload, _ = self._encode(message)
        return self._conn.send_message(payload, CONTINUATION, False, True)

    def cork_end(self, code: int = 1000, message: str | bytes | None = None) -> WebSocket:
        """``end`` inside its own cork scope."""
        conn = self._conn
        prev = conn.cork()
        try:
            self.end(code, message)
        finally:
            conn.uncork(prev)
        return self

    def end(self, code: int = 1000, message: str | bytes | None = None) -> None:
        """Start the close handshake (§7.1.2); the ``close`` behaviour runs now."""
        reason = message.decode("utf-8") if isinstance(message, bytes) else (message or "")
        self._conn.end(code or 1000, reason)

    def close(self) -> None:
        """Close the TCP connection at once, without a handshake (the peer sees 1006)."""
        self._conn.close_now()

    def pause(self) -> None:
        """Stop reading from the client (its messages wait in the kernel) until ``resume``:
        for a consumer that queues messages and falls behind (hosted ASGI apps)."""
        self._conn.set_reading(False)

    def resume(self) -> None:
        """Undo ``pause``."""
        self._conn.set_reading(True)

    # -- pub/sub ----------------------------------------------------------------------------

    def subscribe(self, topic: str) -> bool:
        """Receive what is published to ``topic``."""
        if self._conn.is_closed() or topic in self._topics:
            return False
        new, old = self._route.pubsub.subscribe(self._conn, topic)
        self._topics.append(topic)
        self._subscription(topic, new, old)
        return True

    def unsubscribe(self, topic: str) -> bool:
        """Leave ``topic``; False if this socket was not subscribed to it."""
        if topic not in self._topics:
            return False
        self._topics.remove(topic)
        new, old = self._route.pubsub.unsubscribe(self._conn, topic)
        self._subscription(topic, new, old)
        return True

    def _subscription(self, topic: str, new: int, old: int) -> None:
        handler = self._route.subscription
        if handler is not None:
            conn = self._conn
            prev = conn.cork()
            try:
                conn.call_user(handler, self, topic, new, old)
            finally:
                conn.uncork(prev)

    def is_subscribed(self, topic: str) -> bool:
        """Whether this socket is subscribed to ``topic``."""
        return topic in self._topics

    def get_topics(self) -> list[str]:
        """The topics this socket is subscribed to."""
        return list(self._topics)

    def for_each_topic(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(topic)`` for each topic of this socket (socketify's form)."""
        for topic in list(self._topics):
            callback(topic)

    def publish(self, topic: str, message: Any, opcode: int | None = None,
                compress: bool = False) -> bool:
        """Send ``message`` to the subscribers of ``topic`` except this socket (uWebSockets'
        rule). The frame is serialised once."""
        frame = publish_frame(self._route.json_dumps, message, opcode)
        return self._route.pubsub.publish(topic, frame, self._conn) > 0

    def _unsubscribe_all(self) -> None:
        topics, self._topics = self._topics, []
        pubsub = self._route.pubsub
        for topic in topics:
            new, old = pubsub.unsubscribe(self._conn, topic)
            self._subscription(topic, new, old)

    # -- information ----------------------------------------------------------------------

    def get_user_data(self) -> Any:
        """What ``res.upgrade(..., user_data)`` attached; without an ``upgrade`` behaviour, what
        the route's middleware returned, else the route parameters (``{"room": "lobby"}``)."""
        return self._user_data

    def get_buffered_amount(self) -> int:
        """Bytes waiting on the socket because the client reads slower than we send
        (backpressure): what ``drain`` reports on. Bytes corked in the current callback are
        not counted, so "send while ``get_buffered_amount()`` is small, continue in
        ``drain``" works (see ``WebSocketConnection.socket_buffered``)."""
        return int(self._conn.socket_buffered())

    def get_remote_address(self) -> str | None:
        """The client's address (the forwarded one behind a trusted proxy), or None."""
        return self._conn.remote_address()

    def get_remote_address_bytes(self) -> bytes | None:
        """The client's IP in binary form (4 or 16 bytes); ``None`` for a UNIX socket."""
        return packed_address(self._conn.remote_address())

    def get_protocol(self) -> str | None:
        """The negotiated subprotocol, if any."""
        return self._conn.protocol

    def clone(self) -> WebSocket:
        """socketify compatibility: the object is already safe to keep until ``close``."""
        return self


def publish_frame(dumps: Callable[[Any], bytes], message: Any, opcode: int | None) -> bytes:
    """Serialise a published message once (never compressed: RFC 7692 allows plain frames
    on a connection that negotiated deflate, so one frame serves every subscriber)."""
    if isinstance(message, str):
        payload, op = message.encode(), TEXT
    elif isinstance(message, (bytes, bytearray, memoryview)):
        payload, op = bytes(message), BINARY
    else:
        payload, op = dumps(message), TEXT
    return encode_frame(op if opcode is None else int(opcode), payload)


def _is_coroutine_function(fn: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)
