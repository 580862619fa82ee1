"""Tier 2: WebSocket corking on a recording transport (no sockets): every callback is one
write, the 101 leaves with what ``open`` sends, a publish is serialised once."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

from protocol_helpers import RecordingTransport, connect, server_state, settle

from corkweb import App
from corkweb.pubsub import PubSub
from corkweb.server.websocket import WebSocketConnection, websocket_upgrade
from corkweb.wire.websocket import unmask

KEY = base64.b64encode(b"0123456789abcdef").decode()
UPGRADE = (f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


class SwitchingTransport(RecordingTransport):
    """A recording transport that also records the protocol switch of an upgrade."""

    protocol: Any = None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + unmask(payload, mask)


def open_ws(app: App, loop: asyncio.AbstractEventLoop
            ) -> tuple[WebSocketConnection, SwitchingTransport]:
    app.freeze()
    state = server_state(app, loop, upgrade_handler=websocket_upgrade)
    http, _ = connect(app, loop, state=state)
    transport = SwitchingTransport()
    http.transport = transport
    http.data_received(UPGRADE)
    assert isinstance(transport.protocol, WebSocketConnection), transport.writes
    return transport.protocol, transport


def test_ten_sends_in_one_callback_are_one_write() -> None:
    async def main() -> None:
        app = App(templates=None)
        app.ws("/ws", {"message": lambda ws, msg, op: [ws.send(f"{msg}{i}") for i in range(10)]})
        ws, transport = open_ws(app, asyncio.get_running_loop())
        assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 101")
        ws.data_received(client_frame(b"a"))
        assert len(transport.writes) == 2
        assert transport.writes[1] == b"".join(b"\x81\x02a" + str(i).encode()
                                               for i in range(10))

    asyncio.run(main())


def test_101_and_open_sends_leave_together_and_one_read_is_one_write() -> None:
    async def main() -> None:
        app = App(templates=None)
        app.ws("/ws", {"open": lambda ws: (ws.send("one"), ws.send("two")),
                       "message": lambda ws, msg, op: ws.send(msg, op)})
        ws, transport = open_ws(app, asyncio.get_running_loop())
        assert len(transport.writes) == 1
        assert transport.writes[0].endswith(b"\x81\x03one\x81\x03two")
        ws.data_received(b"".join(client_frame(b"m%d" % i) for i in range(16)))
        assert len(transport.writes) == 2  # sixteen echoes, one write

    asyncio.run(main())


def test_async_message_handler_steps_are_corked() -> None:
    async def main() -> None:
        app = App(templates=None)

        async def message(ws: Any, msg: str, op: int) -> None:
            await asyncio.sleep(0)
            ws.send("after await 1")
            ws.send("after await 2")

        app.ws("/ws", {"message": message})
        ws, transport = open_ws(app, asyncio.get_running_loop())
        ws.data_received(client_frame(b"x"))
        await settle(asyncio.get_running_loop())
        assert transport.writes[1:] == [b"\x81\x0dafter await 1\x81\x0dafter await 2"]

    asyncio.run(main())


def test_publish_outside_a_callback_is_one_write_per_subscriber_per_tick() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        app = App(templates=None)
        app.ws("/ws", {"open": lambda ws: ws.subscribe("t")})
        (_, ta), (_, tb) = open_ws(app, loop), open_ws(app, loop)
        for n in range(3):
            app.publish("t", f"m{n}")  # e.g. from a timer: outside any cork scope
        assert len(ta.writes) == 1 and len(tb.writes) == 1  # only the 101s so far
        await settle(loop, 1)
        assert ta.writes[1] == tb.writes[1] == b"\x81\x02m0\x81\x02m1\x81\x02m2"
        assert len(ta.writes) == 2 and len(tb.writes) == 2

    asyncio.run(main())


class Collector:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_frame(self, frame: bytes) -> int:
        self.frames.append(frame)
        return 1


def test_publish_serialises_the_frame_once_and_excludes_the_sender() -> None:
    hub = PubSub()
    subs = [Collector() for _ in range(5)]
    for sub in subs:
        hub.subscribe(sub, "t")
    assert hub.publish("t", b"\x81\x01x", sender=subs[0]) == 4
    assert subs[0].frames == []
    first = subs[1].frames[0]
    assert all(sub.frames[0] is first for sub in subs[1:])  # the same bytes object
    assert hub.num_subscribers("t") == 5
    for sub in subs:
        hub.unsubscribe(sub, "t")
    assert hub.num_subscribers("t") == 0 and hub._topics == {}


def test_cork_send_outside_a_callback_and_fragmented_send() -> None:
    async def main() -> None:
        app = App(templates=None)
        app.ws("/ws", {})
        ws, transport = open_ws(app, asyncio.get_running_loop())
        sock = ws.ws
        assert sock.cork_send("now") == 1  # SUCCESS, written when the scope ends
        assert transport.writes[-1] == b"\x81\x03now"
        sock.cork(lambda w: (w.send("a", fin=False), w.send("b", 0, fin=False),
                             w.send("c", 0)))
        assert transport.writes[-1] == b"\x01\x01a\x00\x01b\x80\x01c"
        assert sock.get_remote_address() == "127.0.0.1"
        assert sock.get_buffered_amount() == 0

    asyncio.run(main())


def test_send_after_end_is_dropped_and_close_runs_once() -> None:
    async def main() -> None:
        closes: list[tuple[int, str]] = []
        app = App(templates=None)
        app.ws("/ws", {"close": lambda ws, code, reason: closes.append((code, reason))})
        ws, transport = open_ws(app, asyncio.get_running_loop())
        ws.ws.cork(lambda w: w.end(1000, "bye"))
        assert transport.writes[-1] == b"\x88\x05\x03\xe8bye"
        assert ws.ws.send("late") == 2  # DROPPED
        ws.data_received(client_frame(b"\x03\xe8", opcode=8))  # the peer's close
        assert transport.closed
        ws.connection_lost(None)
        assert closes == [(1000, "bye")]

    asyncio.run(main())
