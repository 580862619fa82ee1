"""Tier 3: WebSockets on real sockets — the ``websockets`` client for behaviour, raw frames
for protocol errors and handshakes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from corkweb import App, HTTPError, OpCode, SendStatus
from corkweb.testing import TestServer
from corkweb.wire.websocket import unmask

KEY = base64.b64encode(b"0123456789abcdef").decode()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def echo_app(**behavior: Any) -> App:
    app = App(templates=None)
    app.ws("/ws", {"message": lambda ws, msg, opcode: ws.send(msg, opcode), **behavior})
    return app


# -- raw-socket helpers -----------------------------------------------------------------

def handshake(port: int, path: str = "/ws", extra: str = "",
              version: str = "HTTP/1.1") -> tuple[socket.socket, bytes]:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET {path} {version}\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head


def frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True,
          rsv: int = 0) -> bytes:
    n = len(payload)
    b0 = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        size = bytes([bit | n])
    elif n < 65536:
        size = bytes([bit | 126]) + struct.pack("!H", n)
    else:
        size = bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return b0 + size + payload
    mask = os.urandom(4)
    return b0 + size + mask + unmask(payload, mask)


def read_frames(s: socket.socket, buf: bytes = b"") -> list[tuple[int, bytes]]:
    """Read server frames until the server closes the TCP connection."""
    data = buf
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    out = []
    while len(data) >= 2:
        n = data[1] & 0x7F
        pos = 2
        if n == 126:
            n = struct.unpack("!H", data[2:4])[0]
            pos = 4
        elif n == 127:
            n = struct.unpack("!Q", data[2:10])[0]
            pos = 10
        out.append((data[0] & 0x0F, data[pos:pos + n]))
        data = data[pos + n:]
    return out


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    for op, payload in frames:
        if op == 8:
            return struct.unpack("!H", payload[:2])[0] if payload else 1005
    return None


# -- basics -------------------------------------------------------------------------------

def test_echo_text_binary_json_and_fragments(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)

    def message(ws: Any, msg: Any, opcode: OpCode) -> None:
        if msg == "json":
            assert ws.send({"a": 1}) == SendStatus.SUCCESS
        else:
            ws.send(msg, opcode)

    app.ws("/ws", {"message": message})
    server = serve(app)

    async def main() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as c:
            await c.send("héllo")
            assert await c.recv() == "héllo"
            await c.send(b"\x00\xff")
            assert await c.recv() == b"\x00\xff"
            await c.send("json")
            assert json.loads(await c.recv()) == {"a": 1}
            await c.send(["frag", "mented"])
            assert await c.recv() == "fragmented"
            big = os.urandom(1 << 20)
            await c.send(big)
            assert await c.recv() == big
            pong = await c.ping(b"x")
            await pong

    run(main())


def test_decorator_form_route_params_middleware_and_user_data(
        serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)
    events: list[Any] = []

    def auth(res: Any, req: Any, data: Any) -> Any:
        if req.get_header("authorization") != "token":
            res.write_status(401).end("no")
            return None
        return {"user": "ann"}

    chat = app.router("/rooms", auth).ws("/:room")

    @chat.on_open
    def on_open(ws: Any) -> None:
        ws.send(f"welcome {ws.get_user_data()['user']}")

    @chat.on_message
    def on_message(ws: Any, msg: str, opcode: int) -> None:
        ws.send(msg.upper())

    @chat.on_close
    def on_close(ws: Any, code: int, reason: str) -> None:
        events.append((code, reason))

    server = serve(app)

    async def main() -> None:
        url = f"ws://127.0.0.1:{server.port}/rooms/blue"
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(url):
                pass
        assert info.value.response.status_code == 401
        async with websockets.connect(url, additional_headers={"authorization": "token"}) as c:
            assert await c.recv() == "welcome ann"
            await c.send("hi")
            assert await c.recv() == "HI"
            await c.close(4000, "bye")

    run(main())
    assert events == [(4000, "bye")]


def test_upgrade_handler_params_reject_and_async(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)

    async def upgrade(res: Any, req: Any, ctx: Any) -> None:
        room = req.get_parameter("room")
        key = req.get_header("sec-websocket-key")
        protocol = req.get_header("sec-websocket-protocol")
        ext = req.get_header("sec-websocket-extensions")
        await asyncio.sleep(0)  # decide later: the bytes after the request are held
        if room == "secret":
            raise HTTPError(403, "not for you")
        res.upgrade(key, protocol, ext, ctx, {"room": room})

    app.ws("/r/:room", {
        "upgrade": upgrade,
        "open": lambda ws: ws.send(ws.get_user_data()["room"] + " " + str(ws.get_protocol())),
        "message": lambda ws, m, o: ws.send(m, o),
    })
    server = serve(app)

    async def main() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/r/red",
                                      subprotocols=["chat", "other"]) as c:
            assert c.subprotocol == "chat"
            assert await c.recv() == "red chat"
            await c.send("x")
            assert await c.recv() == "x"
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/r/secret"):
                pass
        assert info.value.response.status_code == 403

    run(main())


def test_frames_sent_with_the_handshake_are_not_lost(serve: Callable[..., TestServer]) -> None:
    server = serve(echo_app())
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
              + frame(1, b"early") + frame(8, struct.pack("!H", 1000)))
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    frames = read_frames(s, rest)
    assert frames[0] == (1, b"early") and close_code(frames) == 1000
    s.close()


# -- handshake validation ---------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "version", "status"), [
    ("Sec-WebSocket-Key: " + KEY + "\r\n", "HTTP/1.1", b"400"),
    ("", "HTTP/1.0", b"400"),
])
def test_bad_handshake_answers_400(serve: Callable[..., TestServer], extra: str, version: str,
                                   status: bytes) -> None:
    server = serve(echo_app())
    s, head = handshake(server.port, extra=extra, version=version)
    assert head.split(b" ")[1] == status, head
    s.close()


def test_bad_key_and_version(serve: Callable[..., TestServer]) -> None:
    server = serve(echo_app(allowed_origins=["https://good.example"]))
    for key, ver, origin, status in [("abc", "13", "https://good.example", b"400"),
                                     (KEY, "8", "https://good.example", b"426"),
                                     (KEY, "13", "https://evil.example", b"403")]:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nOrigin: {origin}\r\n"
                      f"Sec-WebSocket-Version: {ver}\r\n\r\n".encode())
            head = s.recv(4096)
            assert head.split(b" ")[1] == status, head
            if status == b"426":
                assert b"sec-websocket-version: 13\r\n" in head.lower()


def test_plain_get_on_a_ws_route_gets_426(serve: Callable[..., TestServer]) -> None:
    server = serve(echo_app())
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 426")


def test_subprotocol_not_offered_is_never_answered(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)
    app.ws("/ws", {"upgrade": lambda res, req, ctx: res.upgrade(
        req.get_header("sec-websocket-key"), "imposed", None, ctx)})
    server = serve(app)
    s, head = handshake(server.port, extra="Sec-WebSocket-Protocol: chat\r\n")
    assert head.startswith(b"HTTP/1.1 101") and b"sec-websocket-protocol" not in head.lower()
    s.close()


# -- protocol errors with raw frames ------------------------------------------------------------

@pytest.mark.parametrize(("data", "code"), [
    (frame(1, b"unmasked", masked=False), 1002),
    (frame(1, b"\xff\xfe"), 1007),
    (frame(1, b"x", rsv=4), 1002),
    (frame(0, b"stray continuation"), 1002),
    (frame(9, b"x", fin=False), 1002),
    (frame(3, b""), 1002),
    (frame(2, b"x" * 2000), 1009),
    (frame(8, struct.pack("!H", 1005)), 1002),
])
def test_protocol_errors_close_with_the_right_code(serve: Callable[..., TestServer],
                                                   data: bytes, code: int) -> None:
    server = serve(echo_app(max_payload_length=1000))
    s, head = handshake(server.port)
    assert head.startswith(b"HTTP/1.1 101")
    s.sendall(data)
    assert close_code(read_frames(s)) == code
    s.close()


def test_ping_gets_pong_and_ping_behaviour(serve: Callable[..., TestServer]) -> None:
    seen: list[bytes] = []
    server = serve(echo_app(ping=lambda ws, payload: seen.append(payload)))
    s, _ = handshake(server.port)
    s.sendall(frame(9, b"hey") + frame(8, struct.pack("!H", 1000)))
    frames = read_frames(s)
    assert frames[0] == (10, b"hey") and close_code(frames) == 1000
    assert seen == [b"hey"]
    s.close()


def test_idle_timeout_pings_then_closes(serve: Callable[..., TestServer]) -> None:
    server = serve(echo_app(idle_timeout=0.2))
    s, _ = handshake(server.port)
    frames = read_frames(s)  # the server pings after 0.1 s, closes after 0.2 s of silence
    assert frames[0] == (9, b"") and close_code(frames) == 1001
    s.close()


def test_end_and_close(serve: Callable[..., TestServer]) -> None:
    closes: list[tuple[int, str]] = []

    def message(ws: Any, msg: str, opcode: int) -> None:
        if msg == "end":
            ws.end(4001, "done")
        else:
            ws.close()

    app = App(templates=None)
    app.ws("/ws", {"message": message, "close": lambda ws, c, r: closes.append((c, r))})
    server = serve(app)

    async def main() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as c:
            await c.send("end")
            with pytest.raises(ConnectionClosed) as info:
                await c.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 4001
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as c:
            await c.send("close")
            with pytest.raises(ConnectionClosed) as info:
                await c.recv()
            assert info.value.rcvd is None  # no close frame: 1006

    run(main())
    assert closes == [(4001, "done"), (1006, "")]


def test_shutdown_sends_1001() -> None:
    app = echo_app()
    server = TestServer(app).__enter__()
    s, _ = handshake(server.port)
    stopper = threading.Thread(target=server.__exit__, args=(None, None, None))
    stopper.start()
    frames = read_frames_until_close_frame(s)
    assert close_code(frames) == 1001
    s.sendall(frame(8, struct.pack("!H", 1001)))
    stopper.join(10)
    assert not stopper.is_alive()
    s.close()


def read_frames_until_close_frame(s: socket.socket) -> list[tuple[int, bytes]]:
    data = b""
    while True:
        data += s.recv(4096)
        frames = parse_all(data)
        if close_code(frames) is not None:
            return frames


def parse_all(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7F):
        n = data[1] & 0x7F
        out.append((data[0] & 0x0F, data[2:2 + n]))
        data = data[2 + n:]
    return out


# -- compression -------------------------------------------------------------------------------

def test_permessage_deflate(serve: Callable[..., TestServer]) -> None:
    server = serve(echo_app(compression=1, max_payload_length=1 << 20))

    async def main() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws",
                                      compression="deflate") as c:
            assert "permessage-deflate" in (c.response.headers.get(
                "sec-websocket-extensions") or "")
            await c.send("compress me " * 100)
            assert await c.recv() == "compress me " * 100
            await c.send(b"\0" * (2 << 20))  # inflates past the limit: 1009
            with pytest.raises(ConnectionClosed) as info:
                await c.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009

    run(main())


def test_compression_off_ignores_the_offer(serve: Callable[..., TestServer]) -> None:
    server = serve(echo_app())

    async def main() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as c:
            assert c.response.headers.get("sec-websocket-extensions") is None

    run(main())


# -- pub/sub -------------------------------------------------------------------------------------

def test_pubsub(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)
    subs: list[tuple[str, int, int]] = []

    def message(ws: Any, msg: str, opcode: int) -> None:
        if msg == "sub":
            ws.subscribe("room")
            ws.send(f"subscribed {app.num_subscribers('room')} {ws.get_topics()}")
        elif msg == "unsub":
            ws.unsubscribe("room")
            ws.send(f"left {ws.is_subscribed('room')}")
        elif msg == "all":
            app.publish("room", {"to": "all"})
        else:
            ws.publish("room", msg)

    app.ws("/ws", {"message": message,
                   "subscription": lambda ws, t, new, old: subs.append((t, new, old))})
    server = serve(app)

    async def main() -> None:
        url = f"ws://127.0.0.1:{server.port}/ws"
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            await a.send("sub")
            assert await a.recv() == "subscribed 1 ['room']"
            await b.send("sub")
            assert await b.recv() == "subscribed 2 ['room']"
            await a.send("from a")
            assert await b.recv() == "from a"  # the sender is excluded
            await b.send("all")
            assert json.loads(await a.recv()) == {"to": "all"}
            assert json.loads(await b.recv()) == {"to": "all"}
            await a.send("unsub")
            assert await a.recv() == "left False"
            await b.send("from b")  # nobody else is subscribed
            await b.send("all")
            assert json.loads(await b.recv()) == {"to": "all"}

    run(main())
    assert subs[:3] == [("room", 1, 0), ("room", 2, 1), ("room", 1, 2)]


# -- backpressure ---------------------------------------------------------------------------------

def test_client_that_never_reads_is_bounded_and_drops(serve: Callable[..., TestServer]) -> None:
    statuses: list[SendStatus] = []
    buffered: list[int] = []
    chunk = b"x" * 65536
    done = threading.Event()

    def message(ws: Any, msg: Any, opcode: int) -> None:
        for _ in range(200):  # 12.5 MiB to a client that does not read
            statuses.append(ws.send(chunk))
        buffered.append(ws.get_buffered_amount())
        done.set()

    app = App(templates=None)
    app.ws("/ws", {"message": message, "max_backpressure": 1 << 20})
    server = serve(app)
    s, _ = handshake(server.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(frame(1, b"go"))
    assert done.wait(5)
    assert SendStatus.DROPPED in statuses
    assert max(buffered) <= (1 << 20) + 65536 + 65536
    s.close()


def test_drain_is_called(serve: Callable[..., TestServer]) -> None:
    drained = threading.Event()
    app = App(templates=None)
    sent: list[SendStatus] = []

    def message(ws: Any, msg: Any, opcode: int) -> None:
        for _ in range(64):
            sent.append(ws.send(b"y" * 65536))

    app.ws("/ws", {"message": message, "drain": lambda ws: drained.set(),
                   "max_backpressure": 64 << 20})
    server = serve(app)

    async def main() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws",
                                      max_size=None) as c:
            await c.send("go")
            await c.send("go")
            for _ in range(128):
                await c.recv()

    run(main())
    assert SendStatus.BACKPRESSURE in sent
    assert drained.wait(5)


def test_ping_flood_from_a_client_that_never_reads_is_bounded(
        serve: Callable[..., TestServer]) -> None:
    app = echo_app(max_backpressure=64 * 1024)
    server = serve(app)
    s, _ = handshake(server.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ping = frame(9, b"p" * 125)
    s.settimeout(2)
    sent = 0
    try:
        while sent < 40 << 20:  # stops when the server stops reading (a send times out)
            s.sendall(ping * 256)
            sent += len(ping) * 256
    except TimeoutError:
        pass
    assert sent < 40 << 20, "the server kept reading from a client that does not read"
    amounts: list[int] = []
    done = threading.Event()

    def measure() -> None:
        amounts.extend(c.buffered_amount() for c in app.server.state.connections)
        done.set()

    server.loop.call_soon_threadsafe(measure)
    assert done.wait(5)
    assert amounts and max(amounts) < 64 * 1024 + 512 * 1024
    s.close()
