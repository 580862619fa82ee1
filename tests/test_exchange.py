"""Tier 2: the HTTP exchange's declared interface on a recording transport — its phases and
their transition table, the header collection, body framing, body intake and abort."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from protocol_helpers import connect, get, settle

from corkweb.errors import ClientDisconnected
from corkweb.server.exchange import (
    ABORTED,
    DONE,
    MOVES,
    PENDING,
    STREAMING,
    Exchange,
    IllegalTransition,
    Phase,
)
from corkweb.wire.headers import Headers


def run(handler: Any, request: bytes) -> tuple[Any, Any]:
    """Serve ``request`` with ``handler`` on a fresh connection; returns (conn, transport)."""
    async def main() -> tuple[Any, Any]:
        conn, transport = connect(handler, asyncio.get_running_loop())
        conn.data_received(request)
        await asyncio.sleep(0)
        return conn, transport

    return asyncio.run(main())


def test_the_transition_table_allows_only_forward_moves() -> None:
    assert MOVES[PENDING] == {STREAMING, DONE, ABORTED}
    # The one way back: retract_head, while the streamed head is still in the cork buffer.
    assert MOVES[STREAMING] == {DONE, ABORTED, PENDING}
    assert MOVES[DONE] == {ABORTED}
    assert MOVES[ABORTED] == set()
    assert set(MOVES) == set(Phase)


def test_an_illegal_move_raises_and_leaves_the_phase_alone() -> None:
    seen: list[Exchange] = []

    def handler(res: Any, req: Any) -> None:
        seen.append(res)
        res.end("ok")
        with pytest.raises(IllegalTransition, match="from DONE to STREAMING"):
            res.move(STREAMING)
        with pytest.raises(IllegalTransition, match="from DONE to PENDING"):
            res.move(PENDING)

    _, transport = run(handler, get())
    assert seen[0].phase is DONE
    assert transport.data.endswith(b"\r\n\r\nok")


def test_phases_along_a_streamed_answer() -> None:
    phases: list[Phase] = []

    def handler(res: Any, req: Any) -> None:
        phases.append(res.phase)
        res.write("a")
        phases.append(res.phase)
        res.end("b")
        phases.append(res.phase)
        assert res.has_responded() and not res.aborted

    _, transport = run(handler, get())
    assert phases == [PENDING, STREAMING, DONE]
    assert b"transfer-encoding: chunked" in transport.data
    assert transport.data.endswith(b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n")
    assert len(transport.writes) == 1  # corked: head and both chunks in one write


def test_header_collection_add_get_replace_remove() -> None:
    h = Headers()
    h.add("X-One", "1").add("link", "<a>").add("link", "<b>")
    assert h.get("x-one") == "1" and h.get("LINK") == "<a>" and h.get("nope") is None
    assert h.get_all("link") == ["<a>", "<b>"]
    h.replace("link", "<c>")
    assert h.get_all("link") == ["<c>"]
    assert h.remove("x-one") == 1 and "x-one" not in h and "link" in h
    assert not h.has_content_type
    h.add("Content-Type", "text/csv")
    assert h.has_content_type
    assert h.remove("content-type") == 1 and not h.has_content_type
    for framing in ("Content-Length", "transfer-encoding", "connection"):
        with pytest.raises(ValueError, match="set by corkweb"):
            h.add(framing, "1")
    h.add_lines([b"content-type: text/csv\r\n"])
    assert h.has_content_type and list(h) == [("link", "<c>"), ("content-type", "text/csv")]


def test_headers_of_the_head_are_sent_in_order_and_the_default_type_yields() -> None:
    def handler(res: Any, req: Any) -> None:
        res.headers.add("x-a", "1").add("content-type", "text/csv")
        res.headers.replace("x-a", "2")
        res.end("a,b")

    _, transport = run(handler, get())
    head = transport.data.split(b"\r\n\r\n")[0]
    assert b"content-type: text/csv\r\nx-a: 2\r\n" in head
    assert b"text/plain" not in head  # the handler's type replaces the default


def test_body_intake_keeps_chunks_until_read_and_framing_matches() -> None:
    bodies: list[bytes] = []

    async def handler(res: Any, req: Any) -> None:
        await asyncio.sleep(0)  # the body arrives before anyone reads it
        bodies.append(await res.get_data())
        res.end(b"")

    request = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")

    async def main() -> Any:
        conn, transport = connect(handler, asyncio.get_running_loop())
        conn.data_received(request)
        for _ in range(5):
            await asyncio.sleep(0)
        return transport

    transport = asyncio.run(main())
    assert bodies == [b"abcde"]
    assert b"content-length: 0\r\n" in transport.data


def test_abort_drops_writes_fails_the_body_and_tells_on_aborted() -> None:
    events: list[Any] = []
    seen: list[Exchange] = []

    async def handler(res: Any, req: Any) -> None:
        seen.append(res)
        res.on_aborted(lambda r: events.append("aborted"))
        try:
            await res.get_data()
        except ClientDisconnected as exc:
            events.append(type(exc).__name__)
        res.write_header("x", "y").end("late")  # ignored: the client is gone

    async def main() -> Any:
        conn, transport = connect(handler, asyncio.get_running_loop())
        conn.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        await settle(asyncio.get_running_loop())  # the handler waits for the body
        conn.connection_lost(None)
        for _ in range(5):
            await asyncio.sleep(0)
        return transport

    transport = asyncio.run(main())
    assert events == ["aborted", "ClientDisconnected"]
    assert seen[0].phase is ABORTED and seen[0].aborted and seen[0].has_responded()
    assert transport.writes == []
    seen[0].abort()  # a second abort is a no-op, not an illegal move


def test_head_request_gets_framing_but_no_body() -> None:
    _, transport = run(lambda res, req: res.end("hello"),
                       b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.data.endswith(b"content-length: 5\r\n\r\n")


def test_exchange_alone_serves_without_the_framework() -> None:
    # The server's own object answers with no Response on top: the seam is the Exchange.
    from corkweb.server.state import ServerState

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        state = ServerState(loop, lambda res, req: res.end(b"bare"), response_class=Exchange)
        conn, transport = connect(None, loop, state=state)
        conn.data_received(get())
        return transport

    transport = asyncio.run(main())
    assert transport.data.startswith(b"HTTP/1.1 200 OK\r\n") and transport.data.endswith(b"bare")


def test_a_failure_after_write_in_the_same_scope_is_answered_500_in_one_write() -> None:
    """The streamed head never left the cork buffer: it is taken back (STREAMING -> PENDING)
    and the error answer replaces it."""
    def handler(res: Any, req: Any) -> None:
        res.write("partial")
        raise RuntimeError("broken after write")

    conn, transport = run(handler, get())
    assert len(transport.writes) == 1
    assert transport.data.startswith(b"HTTP/1.1 500 ")
    assert b"partial" not in transport.data and not transport.aborted


def test_a_failure_after_the_head_left_cuts_the_connection() -> None:
    async def handler(res: Any, req: Any) -> None:
        res.write("partial")
        await asyncio.sleep(0)  # the step ends: the head and "partial" are flushed
        raise RuntimeError("broken after the head left")

    conn, transport = run(handler, get())
    assert transport.data.startswith(b"HTTP/1.1 200 OK")
    assert b"partial" in transport.data and b"500" not in transport.data
    assert transport.aborted
