"""The state machines are Enums with transition tables; an illegal move raises (STYLE.md
rule 4): the HTTP connection's reading side, the WebSocket close handshake, the Redis link.
(The exchange's phases are tested in test_exchange.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from protocol_helpers import connect, get
from test_websocket_corking import client_frame, open_ws

from corkweb import App
from corkweb.errors import IllegalTransition
from corkweb.server.reading import BODY, BUSY, HEAD, IDLE, READ_MOVES, ReadPhase
from corkweb.server.websocket import CLOSED, CLOSING, OPEN, WS_MOVES, WsPhase


def test_every_table_covers_its_enum() -> None:
    assert set(READ_MOVES) == set(ReadPhase)
    assert set(WS_MOVES) == set(WsPhase)
    pytest.importorskip("redis")
    from corkweb.pubsub.redis import LINK_MOVES, Link

    assert set(LINK_MOVES) == set(Link)
    assert LINK_MOVES[Link.STOPPED] == {Link.CONNECTING}


def test_http_reading_side_moves_and_refuses_a_head_inside_a_body() -> None:
    async def main() -> None:
        conn, transport = connect(lambda res, req: res.end("ok"), asyncio.get_running_loop())
        conn.data_received(get())
        assert transport.data.endswith(b"ok")
        conn._enter(HEAD)  # IDLE -> HEAD: a head begins
        conn._enter(BODY)
        with pytest.raises(IllegalTransition, match="from BODY to HEAD"):
            conn._enter(HEAD)
        conn._enter(BUSY)
        conn._enter(IDLE)

    asyncio.run(main())


def test_websocket_close_handshake_moves_forward_only() -> None:
    async def main() -> None:
        app = App(templates=None)
        app.ws("/ws", {"message": lambda ws, msg, op: ws.end(1000, "bye")})
        ws, transport = open_ws(app, asyncio.get_running_loop())
        assert ws._phase is OPEN
        ws.data_received(client_frame(b"x"))
        assert ws._phase is CLOSING
        assert transport.writes[-1].startswith(b"\x88")  # our close frame
        with pytest.raises(IllegalTransition, match="from CLOSING to OPEN"):
            ws._enter(OPEN)
        ws.connection_lost(None)
        assert ws._phase is CLOSED

    asyncio.run(main())


def test_redis_link_starts_stopped_and_refuses_to_skip_connecting() -> None:
    pytest.importorskip("redis")
    from corkweb.pubsub.redis import Link, RedisBackend

    backend: Any = RedisBackend("redis://127.0.0.1:1/0")
    assert backend.link is Link.STOPPED and not backend.connected
    with pytest.raises(IllegalTransition, match="from STOPPED to UP"):
        backend._move(Link.UP)
