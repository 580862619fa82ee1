"""Tier 1: the sans-IO WebSocket layer — handshake checks, the fast frame parser proven
equivalent to wsproto (hypothesis), frame encoding, the bounded deflate parser."""

from __future__ import annotations

import base64
import os
import random
import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.frame_protocol import FrameProtocol, Opcode

from corkweb.errors import HTTPError
from corkweb.wire.websocket import (
    BINARY,
    TEXT,
    BoundedDeflate,
    DeflateParser,
    FrameParser,
    WebSocketError,
    accept_response,
    choose_protocol,
    encode_close,
    encode_frame,
    negotiate_deflate,
    unmask,
    validate_handshake,
)

KEY = base64.b64encode(b"0123456789abcdef").decode()


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0,
                 mask: bytes | None = b"\x01\x02\x03\x04", long_len: bool = False) -> bytes:
    """A client frame; ``long_len`` uses a longer length encoding than needed (invalid)."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask is not None else 0
    if n < 126 and not long_len:
        head += bytes([bit | n])
    elif n < 65536 and not (long_len and n >= 126):
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + unmask(payload, mask)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_message(self, data: str | bytes, opcode: int) -> None:
        self.events.append(("message", opcode, data))

    def on_ping(self, payload: bytes) -> None:
        self.events.append(("ping", payload))

    def on_pong(self, payload: bytes) -> None:
        self.events.append(("pong", payload))

    def on_close(self, code: int, reason: str) -> None:
        self.events.append(("close", code, reason))


def fast_events(chunks: list[bytes], max_message: int = 1 << 30) -> list[tuple[Any, ...]]:
    rec = Recorder()
    parser = FrameParser(rec, max_message)
    try:
        for chunk in chunks:
            parser.feed(chunk)
    except WebSocketError as exc:
        rec.events.append(("error", exc.code))
    return rec.events


def wsproto_events(chunks: list[bytes]) -> list[tuple[Any, ...]]:
    """The reference: wsproto's events, with messages assembled."""
    conn = Connection(ConnectionType.SERVER)
    out: list[tuple[Any, ...]] = []
    parts: list[Any] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        for event in conn.events():
            if isinstance(event, Message):
                parts.append(event.data)
                if event.message_finished:
                    if isinstance(event, TextMessage):
                        out.append(("message", TEXT, "".join(parts)))
                    else:
                        out.append(("message", BINARY, b"".join(parts)))
                    parts = []
            elif isinstance(event, Ping):
                out.append(("ping", bytes(event.payload)))
            elif isinstance(event, Pong):
                out.append(("pong", bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                if conn.state is ConnectionState.OPEN:
                    out.append(("error", int(event.code)))
                else:
                    out.append(("close", int(event.code), event.reason or ""))
                return out
    return out


# -- hypothesis: the fast parser against wsproto ------------------------------------------

close_codes = st.sampled_from([1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1015,
                               999, 2999, 3000, 4999, 5000, 0])
texts = st.text(max_size=40).map(lambda s: s.encode("utf-8"))
blobs = st.binary(max_size=300)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    # Close frames end the stream, so they are rarer than the frames that build messages.
    kind = draw(st.sampled_from(["text"] * 6 + ["binary"] * 4 + ["cont"] * 6 + [
        "ping", "ping", "pong", "close", "bad"]))
    fin = draw(st.booleans()) if kind in ("text", "binary", "cont") else (
        draw(st.sampled_from([True] * 9 + [False])))
    rsv = draw(st.sampled_from([0] * 19 + [1, 2, 4]))
    mask = draw(st.sampled_from([None] + [b"\x00\x00\x00\x00"] * 2 + [os.urandom(4)] * 17))
    long_len = draw(st.sampled_from([False] * 19 + [True]))
    if kind == "text":
        payload = draw(st.one_of(texts, texts, texts, blobs))
        op = TEXT
    elif kind == "binary":
        payload, op = draw(st.one_of(blobs, st.binary(min_size=126, max_size=70000))), BINARY
    elif kind == "cont":
        payload, op = draw(st.one_of(texts, blobs)), 0
    elif kind in ("ping", "pong"):
        payload = draw(st.one_of(st.binary(max_size=125), st.binary(min_size=126,
                                                                     max_size=130)))
        op = 9 if kind == "ping" else 10
    elif kind == "close":
        shape = draw(st.sampled_from(["empty", "one", "code", "code", "badreason"]))
        code = draw(close_codes)
        payload = {"empty": b"", "one": b"\x03",
                   "code": struct.pack("!H", code) + draw(texts)[:100],
                   "badreason": struct.pack("!H", 1000) + b"\xff\xfe"}[shape]
        op = 8
    else:
        op = draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]))
        payload = draw(st.binary(max_size=10))
    return client_frame(op, payload, fin, rsv, mask, long_len)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames(), min_size=1, max_size=12), st.lists(st.integers(0, 1 << 20),
                                                            max_size=6))
def test_fast_parser_matches_wsproto(stream: list[bytes], cuts: list[int]) -> None:
    data = b"".join(stream)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    expected = wsproto_events(chunks)
    assert fast_events(chunks) == expected
    assert fast_events([data]) == expected


@settings(max_examples=30, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=3))
def test_fast_parser_byte_by_byte(stream: list[bytes]) -> None:
    data = b"".join(stream)
    if len(data) > 3000:
        data = data[:3000]
    whole = fast_events([data])
    assert fast_events([data[i:i + 1] for i in range(len(data))]) == whole


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0, 1, 2, 8, 9, 10]), st.binary(max_size=70000), st.booleans())
def test_encode_frame_matches_wsproto(opcode: int, payload: bytes, fin: bool) -> None:
    proto = FrameProtocol(client=False, extensions=[])
    if opcode >= 8:
        payload = payload[:125]
        fin = True
    expected = proto._serialize_frame(Opcode(opcode), payload, fin)
    assert encode_frame(opcode, payload, fin) == bytes(expected)


# -- specific cases -------------------------------------------------------------------------

def test_message_too_big_is_refused_before_the_payload_arrives() -> None:
    head = client_frame(BINARY, b"x" * 2000)[:8]
    assert fast_events([head], max_message=1000) == [("error", 1009)]
    frags = client_frame(BINARY, b"x" * 600, fin=False) + client_frame(0, b"x" * 600)
    assert fast_events([frags], max_message=1000) == [("error", 1009)]
    for op in (TEXT, BINARY):  # small whole frames take a shorter path: the limit holds there
        assert fast_events([client_frame(op, b"x" * 100)], max_message=99) == [("error", 1009)]
        assert fast_events([client_frame(op, b"x" * 99)], max_message=99) != [("error", 1009)]


def test_large_frame_in_many_reads() -> None:
    payload = os.urandom(3 << 20)
    data = client_frame(BINARY, payload)
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    assert fast_events(chunks) == [("message", BINARY, payload)]


def test_nothing_is_read_after_close() -> None:
    data = client_frame(8, struct.pack("!H", 1000)) + client_frame(TEXT, b"late")
    assert fast_events([data]) == [("close", 1000, "")]


def test_encode_close_cuts_the_reason_on_a_character() -> None:
    frame = encode_close(1000, "é" * 100)
    assert frame[1] <= 125
    (frame[4:]).decode("utf-8")
    assert encode_close(1005) == b"\x88\x00"


# -- handshake ------------------------------------------------------------------------------

def headers(**extra: str) -> list[tuple[bytes, bytes]]:
    base = {"host": "x", "upgrade": "websocket", "connection": "Upgrade",
            "sec-websocket-key": KEY, "sec-websocket-version": "13"}
    base.update({k.replace("_", "-"): v for k, v in extra.items()})
    return [(k.encode(), v.encode()) for k, v in base.items() if v != "-"]


def test_valid_handshake() -> None:
    hs = validate_handshake("GET", "1.1", headers(sec_websocket_protocol="chat, superchat"))
    assert hs.key == KEY and hs.protocols == ["chat", "superchat"]


@pytest.mark.parametrize(("method", "version", "hdrs", "status"), [
    ("POST", "1.1", headers(), 400),
    ("GET", "1.0", headers(), 400),
    ("GET", "1.1", headers(sec_websocket_key="not base64!"), 400),
    ("GET", "1.1", headers(sec_websocket_key=base64.b64encode(b"short").decode()), 400),
    ("GET", "1.1", headers() + [(b"sec-websocket-key", KEY.encode())], 400),
    ("GET", "1.1", headers(sec_websocket_key="-"), 400),
    ("GET", "1.1", headers(connection="keep-alive"), 400),
    ("GET", "1.1", headers(sec_websocket_version="8"), 426),
    ("GET", "1.1", headers(sec_websocket_version="-"), 426),
])
def test_bad_handshakes(method: str, version: str, hdrs: list[tuple[bytes, bytes]],
                        status: int) -> None:
    with pytest.raises(HTTPError) as info:
        validate_handshake(method, version, hdrs)
    assert info.value.status == status
    if status == 426:
        assert ("sec-websocket-version", "13") in list(info.value.headers)


def test_origin_check() -> None:
    validate_handshake("GET", "1.1", headers(origin="https://a.example"), ["https://a.example"])
    with pytest.raises(HTTPError) as info:
        validate_handshake("GET", "1.1", headers(origin="https://evil"), ["https://a.example"])
    assert info.value.status == 403


def test_subprotocol_only_if_offered() -> None:
    assert choose_protocol(["chat"], "chat") == "chat"
    assert choose_protocol(["chat"], "other") is None
    assert choose_protocol(["a", "b"], "b, a") == "b"
    assert choose_protocol([], "chat") is None


def test_accept_token_rfc_example() -> None:
    head = accept_response("dGhlIHNhbXBsZSBub25jZQ==", None, "", b"date: x\r\n")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head


# -- permessage-deflate -------------------------------------------------------------------

def deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return (comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]


def test_deflate_roundtrip_and_zip_bomb() -> None:
    ext, header = negotiate_deflate("permessage-deflate; client_max_window_bits", 1 << 20)
    assert isinstance(ext, BoundedDeflate) and header.startswith("permessage-deflate")
    rec = Recorder()
    parser = DeflateParser(rec, ext, 1 << 20)
    parser.feed(client_frame(TEXT, deflate(b"hello " * 100), rsv=4))
    assert rec.events == [("message", TEXT, "hello " * 100)]
    bomb = deflate(b"\0" * (8 << 20))  # 8 MiB of zeros in about 8 KiB
    assert len(bomb) < 20000
    with pytest.raises(WebSocketError) as info:
        parser.feed(client_frame(BINARY, bomb, rsv=4))
    assert info.value.code == 1009


def test_no_deflate_without_offer() -> None:
    assert negotiate_deflate("x-webkit-deflate-frame", 100) == (None, "")


def test_unmask_matches_the_byte_by_byte_definition_at_every_length():
    # Below 126 bytes the key is built from tables, above from the repeated mask: both must
    # equal RFC 6455 §5.3's octet-i XOR mask[i mod 4], whatever the length's remainder by 4.
    rng = random.Random(7)
    for n in range(300):
        data = rng.randbytes(n)
        mask = rng.randbytes(4)
        expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        assert unmask(data, mask) == expected, n
