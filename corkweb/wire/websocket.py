"""WebSocket wire protocol, sans-IO: handshake validation, frames in, frames out (RFC 6455).

Two parsers share one sink interface (``on_message(data, opcode)``, ``on_ping(payload)``,
``on_pong(payload)``, ``on_close(code, reason)``) and raise :class:`WebSocketError` carrying
the close code to answer with:

* :class:`FrameParser`, the fast path for connections without extensions: a hand-written
  frame loop (fragmentation, interleaved control frames, fail-fast UTF-8, size limit).
  ``tests/test_websocket_wire.py`` proves it equivalent to wsproto with hypothesis on random
  frames, masks, sizes and splits of the byte stream.
* :class:`DeflateParser`, used when permessage-deflate was negotiated: wsproto's
  ``Connection`` and its ``PerMessageDeflate`` extension, bounded so that a message that
  inflates past the limit (a zip bomb) is refused with 1009 before it is inflated.

The handshake is checked here more strictly than wsproto does on its own (it accepts a key
that is not base64 of 16 bytes, two key lines and HTTP/1.0 requests).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import generate_accept_token

from ..errors import CorkwebError, HTTPError

__all__ = [
    "CONTINUATION", "TEXT", "BINARY", "CLOSE", "PING", "PONG",
    "WebSocketError", "Handshake", "validate_handshake", "accept_response", "choose_protocol",
    "negotiate_deflate", "encode_frame", "encode_close", "FrameParser", "DeflateParser",
    "FrameSink", "valid_close_code", "parse_close", "check_key", "unmask", "SMALL_HEADS",
    "SendStatus",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class SendStatus(IntEnum):
    """What a send did (socketify's values): the server's send returns one, and
    ``ws.send`` hands it on unchanged."""

    BACKPRESSURE = 0  # queued, but earlier data is still waiting to be sent: wait for drain
    SUCCESS = 1
    DROPPED = 2  # not queued: over max_backpressure, or the socket is closing

_KNOWN_CODES = frozenset(int(c) for c in CloseReason)
_LOCAL_ONLY = frozenset((1005, 1006, 1015))  # RFC 6455 §7.4.1: never sent in a frame


class WebSocketError(CorkwebError):
    """The peer broke the protocol; ``code`` is the close code to answer with (§7.4.1)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FrameSink(Protocol):
    """What a parser calls for each complete event."""

    def on_message(self, data: str | bytes, opcode: int) -> None: ...
    def on_ping(self, payload: bytes) -> None: ...
    def on_pong(self, payload: bytes) -> None: ...
    def on_close(self, code: int, reason: str) -> None: ...


# -- handshake ----------------------------------------------------------------------------

@dataclass
class Handshake:
    """The parts of a valid opening handshake a server needs (RFC 6455 §4.2.1)."""

    key: str
    protocols: list[str]
    extensions: str
    origin: str | None


def _tokens(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def validate_handshake(method: str, version: str, headers: Iterable[tuple[bytes, bytes]],
                       allowed_origins: Iterable[str] | None = None) -> Handshake:
    """Check an upgrade request strictly; raise :class:`HTTPError` with the status to answer.

    400 for a malformed request (RFC 6455 §4.2.1: GET, HTTP/1.1, ``Upgrade: websocket``,
    ``Connection: upgrade``, exactly one ``Sec-WebSocket-Key`` that is base64 of 16 bytes);
    426 with ``Sec-WebSocket-Version: 13`` for another version (§4.4); 403 for an origin not
    in ``allowed_origins`` (§10.2).
    """
    if method != "GET":
        raise HTTPError(400, "a WebSocket handshake must be a GET request")
    if version != "1.1":
        raise HTTPError(400, "a WebSocket handshake needs HTTP/1.1")
    keys: list[str] = []
    versions: list[str] = []
    upgrade: list[str] = []
    connection: list[str] = []
    protocols: list[str] = []
    extensions: list[str] = []
    origin: str | None = None
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        value = raw_value.decode("latin-1").strip()
        if name == b"sec-websocket-key":
            keys.append(value)
        elif name == b"sec-websocket-version":
            versions.append(value)
        elif name == b"upgrade":
            upgrade += _tokens(value.lower())
        elif name == b"connection":
            connection += _tokens(value.lower())
        elif name == b"sec-websocket-protocol":
            protocols += _tokens(value)
        elif name == b"sec-websocket-extensions":
            extensions.append(value)
        elif name == b"origin":
            origin = value
    if "websocket" not in upgrade:
        raise HTTPError(400, "missing 'Upgrade: websocket'")
    if "upgrade" not in connection:
        raise HTTPError(400, "missing 'Connection: upgrade'")
    if versions != ["13"]:
        raise HTTPError(426, "unsupported WebSocket version",
                        headers=[("sec-websocket-version", "13")])
    if len(keys) != 1:
        raise HTTPError(400, "exactly one Sec-WebSocket-Key is required")
    check_key(keys[0])
    if allowed_origins is not None and origin not in set(allowed_origins):
        raise HTTPError(403, "origin not allowed")
    return Handshake(keys[0], protocols, ", ".join(extensions), origin)


def check_key(key: str) -> None:
    """A key must be base64 of 16 bytes (RFC 6455 §4.1 item 7); raise 400 otherwise."""
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise HTTPError(400, "Sec-WebSocket-Key is not base64") from None
    if len(raw) != 16:
        raise HTTPError(400, "Sec-WebSocket-Key must encode 16 bytes")


def choose_protocol(offered: list[str], wanted: str | None) -> str | None:
    """The subprotocol to answer: ``wanted`` (or the first of a comma list, as socketify
    passes the client's header through) only if the client offered it (§4.2.2 item 5.4)."""
    if not wanted:
        return None
    for candidate in _tokens(wanted):
        if candidate in offered:
            return candidate
    return None


def negotiate_deflate(header: str, max_message: int) -> tuple[PerMessageDeflate | None, str]:
    """Accept the first acceptable ``permessage-deflate`` offer (RFC 7692 §5).

    Returns the extension (``None`` if nothing was accepted) and the header value to answer.
    """
    for offer in _tokens_ext(header):
        name = offer.split(";", 1)[0].strip()
        if name != "permessage-deflate":
            continue
        ext = BoundedDeflate(max_message)
        accepted = ext.accept(offer)
        if accepted is True or accepted == "":
            return ext, name
        if accepted:
            return ext, f"{name}; {accepted}"
    return None, ""


def _tokens_ext(header: str) -> list[str]:
    # Extension offers are comma-separated; parameters are separated by ";" (RFC 6455 §9.1).
    return [t.strip() for t in header.split(",") if t.strip()]


def accept_response(key: str, protocol: str | None, extensions: str, date: bytes,
                    extra_headers: Iterable[bytes] = ()) -> bytes:
    """The ``101 Switching Protocols`` head (RFC 6455 §4.2.2 item 5)."""
    parts = [
        b"HTTP/1.1 101 Switching Protocols\r\n", date,
        b"upgrade: websocket\r\nconnection: Upgrade\r\n",
        b"sec-websocket-accept: ", generate_accept_token(key.encode("ascii")), b"\r\n",
    ]
    if protocol:
        parts += (b"sec-websocket-protocol: ", protocol.encode("latin-1"), b"\r\n")
    if extensions:
        parts += (b"sec-websocket-extensions: ", extensions.encode("latin-1"), b"\r\n")
    parts += extra_headers
    parts.append(b"\r\n")
    return b"".join(parts)


# -- frames out ---------------------------------------------------------------------------

# PERF: the two header bytes of every unfragmented frame under 126 bytes, built once:
# a list lookup instead of bytes((b0, n)) saves 0.12 µs per sent message.
SMALL_HEADS = [[bytes((0x80 | op, n)) for n in range(126)] for op in range(16)]


def encode_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """One unmasked server frame (§5.2)."""
    n = len(payload)
    if n < 126 and fin and not rsv1:
        return SMALL_HEADS[opcode][n] + payload
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", b0, 126, n) + payload
    return struct.pack("!BBQ", b0, 127, n) + payload


def encode_close(code: int | None = 1000, reason: str = "") -> bytes:
    """A close frame; the reason is cut to fit a control frame (125 bytes, §5.5)."""
    if code is None or code in _LOCAL_ONLY:
        return encode_frame(CLOSE, b"")
    data = reason.encode("utf-8")[:123]
    while data:
        try:
            data.decode("utf-8")
            break
        except UnicodeDecodeError:  # the cut split a character: drop its remains
            data = data[:-1]
    return encode_frame(CLOSE, struct.pack("!H", code) + data)


def valid_close_code(code: int) -> bool:
    """Whether a peer may send ``code`` in a close frame (§7.4)."""
    if code < 1000 or code > 4999 or code in _LOCAL_ONLY:
        return False
    return not (code <= 2999 and code not in _KNOWN_CODES)


def parse_close(payload: bytes) -> tuple[int, str]:
    """Code and reason of a received close frame; raise on a malformed one (§5.5.1)."""
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise WebSocketError(1002, "close frame with a 1-byte payload")
    code = (payload[0] << 8) | payload[1]
    if not valid_close_code(code):
        raise WebSocketError(1002, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError(1007, "close reason is not UTF-8") from None
    return code, reason


# -- frames in: the fast path ------------------------------------------------------------

def unmask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (§5.3)."""
    n = len(data)
    if not n:
        return b""
    # PERF: one big-integer XOR instead of a per-byte loop: 0.3 µs for 13 bytes, 9 ms for
    # 16 MiB, against 1.2 µs and 1.6 s byte by byte.
    if n < 126:
        # PERF: a small frame's key is the mask's integer times a table's 1-per-word
        # constant, cut to n bytes by a table's bit mask, instead of repeating and slicing
        # the mask's bytes first: 278 -> 252 ns for 13 bytes, 425 -> 368 ns for 120 (timeit).
        key = int.from_bytes(mask, "little") * _REPEAT[n] & _LOW_BITS[n]
    else:
        key = int.from_bytes((mask * ((n >> 2) + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


# For unmask: a 1 in the low bit of each 32-bit word that n bytes touch, and n bytes of 1s.
_REPEAT = [sum(1 << (32 * i) for i in range((n + 3) >> 2)) for n in range(126)]
_LOW_BITS = [(1 << (8 * n)) - 1 for n in range(126)]


_utf8 = codecs.getincrementaldecoder("utf-8")


class FrameParser:
    """Client frames in, sink calls out, for a connection without extensions."""

    __slots__ = (
        "_sink", "_max", "_buf", "_op", "_parts", "_size", "_decoder", "closed", "_held",
        "_held_size", "_need",
    )

    def __init__(self, sink: FrameSink, max_message: int = 16 * 1024 * 1024) -> None:
        self._sink = sink
        self._max = max_message
        self._buf = b""
        self._op = 0  # opcode of the fragmented message being assembled, 0 if none
        self._parts = bytearray()
        self._size = 0
        self._decoder: Any = None
        # A frame that spans many reads is collected in ``_held`` and joined once, when all
        # ``_need`` bytes are there (joining at each read would copy it quadratically).
        self._held: list[bytes] = []
        self._held_size = 0
        self._need = 0
        #: Set once a close frame was parsed: nothing after it is read (§5.5.1).
        self.closed = False

    def release(self) -> None:
        """The connection is gone: stop, and drop the sink, which points back to this parser
        (so that the connection is freed by reference counting, not by a collection)."""
        self.closed = True
        del self._sink

    def feed(self, data: bytes) -> None:
        """Parse ``data``; call the sink for every complete event; raise WebSocketError."""
        if self._need:
            self._held.append(data)
            self._held_size += len(data)
            if self._held_size < self._need:
                return
            buf = b"".join(self._held)
            self._held = []
            self._held_size = self._need = 0
        elif self._buf:
            buf = self._buf + data
        else:
            buf = data
        n = len(buf)
        pos = 0
        sink = self._sink
        while n - pos >= 2 and not self.closed:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if (b0 == 0x81 or b0 == 0x82) and 0x80 <= b1 < 0xFE and not self._op:
                # PERF: the common frame — a whole text or binary message, masked, under 126
                # bytes, no reserved bit, outside a fragmented message — without the checks
                # below, which it passes: 23.7k -> 22.2k instructions an echoed message
                # (in-process, callgrind).
                length = b1 - 0x80
                end = pos + 6 + length
                if end > n:
                    break  # the rest of it comes with the next read
                if length > self._max:
                    raise WebSocketError(1009, "message too big")
                # unmask's small-frame branch, inlined (one call less a message).
                payload = (int.from_bytes(buf[pos + 6:end], "little") ^ (int.from_bytes(
                    buf[pos + 2:pos + 6], "little") * _REPEAT[length] & _LOW_BITS[length])
                ).to_bytes(length, "little")
                pos = end
                if b0 == 0x81:
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise WebSocketError(1007, "text message is not valid UTF-8") from None
                    sink.on_message(text, TEXT)
                else:
                    sink.on_message(payload, BINARY)
                continue
            op = b0 & 0x0F
            length = b1 & 0x7F
            if op >= 8:
                if op > 10:
                    raise WebSocketError(1002, f"invalid opcode {op:#x}")
                if not b0 & 0x80:
                    raise WebSocketError(1002, "fragmented control frame")
                if length > 125:
                    raise WebSocketError(1002, "control frame payload over 125 bytes")
            elif op > 2:
                raise WebSocketError(1002, f"invalid opcode {op:#x}")
            head = pos + 2
            if length == 126:
                if n - head < 2:
                    break
                length = (buf[head] << 8) | buf[head + 1]
                head += 2
                if length < 126:
                    raise WebSocketError(1002, "payload length not minimally encoded")
            elif length == 127:
                if n - head < 8:
                    break
                length = int.from_bytes(buf[head:head + 8], "big")
                head += 8
                if length < 65536 or length >> 63:
                    raise WebSocketError(1002, "invalid 8-byte payload length")
            if b0 & 0x70:
                raise WebSocketError(1002, "reserved bit set without an extension")
            if not b1 & 0x80:
                raise WebSocketError(1002, "client frame not masked")  # §5.1
            if op < 8 and self._size + length > self._max:
                raise WebSocketError(1009, "message too big")  # before buffering it
            end = head + 4 + length
            if end > n:
                if length > 4096:
                    self._need = end - pos
                    self._held = [buf[pos:]]
                    self._held_size = n - pos
                    self._buf = b""
                    return
                break
            payload = unmask(buf[head + 4:end], buf[head:head + 4])
            pos = end
            if op == TEXT and b0 & 0x80 and not self._op:
                # PERF: the common case, a whole text message in one frame, skips the
                # fragment bookkeeping below.
                try:
                    text = payload.decode("utf-8")
                except UnicodeDecodeError:
                    raise WebSocketError(1007, "text message is not valid UTF-8") from None
                sink.on_message(text, TEXT)
            elif op >= 8:
                if op == PING:
                    sink.on_ping(payload)
                elif op == PONG:
                    sink.on_pong(payload)
                else:
                    self.closed = True
                    code, reason = parse_close(payload)
                    sink.on_close(code, reason)
            else:
                self._data_frame(op, bool(b0 & 0x80), payload)
        self._buf = buf[pos:] if pos < n else b""

    def _data_frame(self, op: int, fin: bool, payload: bytes) -> None:
        if op == CONTINUATION:
            if not self._op:
                raise WebSocketError(1002, "continuation frame without a message")
            op = self._op
        elif self._op:
            raise WebSocketError(1002, "new message inside a fragmented one")
        elif fin:  # a whole binary message (whole text ones are handled by feed)
            self._sink.on_message(payload, op)
            return
        else:
            self._op = op
            self._decoder = _utf8() if op == TEXT else None
        # A bytearray, not a list of parts: a flood of tiny (or empty) fragments costs no
        # per-fragment memory, so max_message bounds what a message can hold.
        self._parts += payload
        self._size += len(payload)
        decoder = self._decoder
        if decoder is not None:
            # Fail fast on invalid UTF-8 (Autobahn 6.4): check each fragment as it comes.
            try:
                decoder.decode(payload, fin)
            except UnicodeDecodeError:
                raise WebSocketError(1007, "text message is not valid UTF-8") from None
        if fin:
            data = bytes(self._parts)
            self._parts = bytearray()
            self._size = 0
            self._op = 0
            self._decoder = None
            self._sink.on_message(data.decode("utf-8") if op == TEXT else data, op)


# -- frames in: permessage-deflate through wsproto ----------------------------------------

class BoundedDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate that never inflates a message past ``max_message``."""

    def __init__(self, max_message: int) -> None:
        super().__init__()
        self.max_message = max_message
        self._inflated = 0

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        assert self._decompressor is not None
        room = self.max_message - self._inflated
        try:
            # A zip bomb stops here: at most one byte past the limit is ever inflated.
            out = self._decompressor.decompress(bytes(data), room + 1)
        except Exception:  # zlib.error: corrupt deflate data
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self.max_message or self._decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        if fin:
            self._inflated = 0
        return super().frame_inbound_complete(proto, fin)


class DeflateParser:
    """The same sink interface as :class:`FrameParser`, on wsproto with permessage-deflate."""

    __slots__ = ("_sink", "_max", "_conn", "_parts", "_size", "closed")

    def __init__(self, sink: FrameSink, extension: PerMessageDeflate,
                 max_message: int = 16 * 1024 * 1024) -> None:
        self._sink = sink
        self._max = max_message
        self._conn = Connection(ConnectionType.SERVER, extensions=[extension])
        self._parts = bytearray()  # text is kept UTF-8 encoded: see FrameParser._data_frame
        self._size = 0
        self.closed = False

    def release(self) -> None:
        """The connection is gone: stop, and drop the sink, which points back to this parser
        (so that the connection is freed by reference counting, not by a collection)."""
        self.closed = True
        del self._sink

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        conn = self._conn
        conn.receive_data(data)
        for event in conn.events():
            if isinstance(event, Message):
                data = event.data
                self._parts += data.encode("utf-8") if isinstance(data, str) else data
                self._size = len(self._parts)
                if self._size > self._max:
                    raise WebSocketError(1009, "message too big")
                if event.message_finished:
                    parts, self._parts, self._size = self._parts, bytearray(), 0
                    if isinstance(event, TextMessage):
                        self._sink.on_message(parts.decode("utf-8"), TEXT)
                    else:
                        self._sink.on_message(bytes(parts), BINARY)
            elif isinstance(event, Ping):
                self._sink.on_ping(bytes(event.payload))
            elif isinstance(event, Pong):
                self._sink.on_pong(bytes(event.payload))
            elif isinstance(event, CloseConnection):
                if conn.state is ConnectionState.OPEN:  # a parse failure, not a close frame
                    raise WebSocketError(int(event.code), event.reason or "protocol error")
                self.closed = True
                self._sink.on_close(int(event.code), event.reason or "")
                return

    def encode(self, payload: bytes | str, opcode: int) -> bytes:
        """A compressed data frame (RFC 7692 §7.2.1), through wsproto's extension."""
        if opcode == TEXT:
            data = payload if isinstance(payload, str) else payload.decode("utf-8")
            return bytes(self._conn.send(TextMessage(data=data)))
        raw = payload.encode("utf-8") if isinstance(payload, str) else payload
        return bytes(self._conn.send(BytesMessage(data=raw)))

