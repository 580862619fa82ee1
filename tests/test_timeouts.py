"""Tier 2 timing: every timeout on a recording transport and a fake clock (corkweb.testing).

Time moves only through ``clock.advance``: each test states the durations it means and waits
for none. A timeout fires between its limit and its limit plus one tick of the sweep (half the
shortest timeout), which is what the assertions bracket.
"""

from __future__ import annotations

import asyncio
from typing import Any

from protocol_helpers import FakeClock, connect, get, settle

from corkweb import App, Limits


def make_app(**limits: Any) -> App:
    app = App(templates=None, limits=Limits(**limits))
    app.get("/", lambda res, req: res.end("ok"))

    @app.post("/echo")
    async def echo(res: Any, req: Any) -> None:
        res.end(await res.get_data())

    return app


def run(main: Any) -> None:
    asyncio.run(main())


def test_idle_keep_alive_closes_after_its_timeout_not_before() -> None:
    async def main() -> None:
        clock = FakeClock()
        conn, transport = connect(make_app(keepalive_timeout=5.0), asyncio.get_running_loop(),
                                  clock=clock)
        conn.data_received(get())
        assert transport.data.endswith(b"ok") and not transport.closed
        clock.advance(4.9)
        assert not transport.closed
        clock.advance(conn.state.tick + 0.2)  # at most one tick late
        assert transport.closed and not transport.aborted  # closed quietly, nothing written
        assert len(transport.writes) == 1

    run(main)


def test_head_deadline_is_total_however_the_bytes_drip() -> None:
    async def main() -> None:
        clock = FakeClock()
        conn, transport = connect(make_app(head_timeout=1.0, keepalive_timeout=5.0),
                                  asyncio.get_running_loop(), clock=clock)
        conn.data_received(b"GET / HTTP/1.1\r\n")
        for _ in range(4):  # a header line every 0.3 s does not extend the deadline
            clock.advance(0.3)
            if transport.closed:
                break
            conn.data_received(b"X-A: b\r\n")
        clock.advance(conn.state.tick)
        assert transport.data.startswith(b"HTTP/1.1 408 ")
        assert b"timed out reading the request head" in transport.data
        assert transport.closed
        assert clock.time() <= 1.0 + 2 * conn.state.tick

    run(main)


def test_silent_body_gets_408_and_the_handler_its_error() -> None:
    async def main() -> None:
        clock = FakeClock()
        loop = asyncio.get_running_loop()
        conn, transport = connect(make_app(body_timeout=2.0), loop, clock=clock)
        conn.data_received(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
        await settle(loop)
        clock.advance(1.9)
        assert transport.writes == []
        clock.advance(conn.state.tick + 0.2)
        await settle(loop)
        assert transport.data.startswith(b"HTTP/1.1 408 ")
        assert transport.closed

    run(main)


def test_client_that_reads_nothing_is_dropped_after_the_send_timeout() -> None:
    async def main() -> None:
        clock = FakeClock()
        aborted: list[bool] = []
        app = App(templates=None, limits=Limits(send_timeout=3.0))

        @app.get("/big")
        def big(res: Any, req: Any) -> None:
            res.on_aborted(lambda r: aborted.append(True))
            res.write(b"z" * 1024)  # streaming: the answer waits for the client

        conn, transport = connect(app, asyncio.get_running_loop(), clock=clock)
        conn.data_received(get("/big"))
        conn.pause_writing()  # the client's window is full: it reads nothing
        clock.advance(2.9)
        assert not transport.aborted
        clock.advance(conn.state.tick + 0.2)
        assert transport.aborted
        conn.connection_lost(None)  # what the transport reports after abort()
        assert aborted == [True]

    run(main)


def test_a_reading_client_is_never_dropped() -> None:
    async def main() -> None:
        clock = FakeClock()
        conn, transport = connect(make_app(send_timeout=3.0, keepalive_timeout=60.0),
                                  asyncio.get_running_loop(), clock=clock)
        for _ in range(10):  # writing pauses and resumes: the client keeps up, slowly
            conn.pause_writing()
            clock.advance(2.0)
            conn.resume_writing()
            clock.advance(0.5)
        assert not transport.closed

    run(main)


def test_drain_reads_an_idle_connection_for_drain_idle_then_closes_it() -> None:
    async def main() -> None:
        clock = FakeClock()
        loop = asyncio.get_running_loop()
        conn, transport = connect(make_app(drain_idle=1.0), loop, clock=clock)
        conn.data_received(get())
        conn.state.draining = True
        conn.shutdown()
        assert not transport.closed  # still read: a request may be on its way
        conn.data_received(get())  # it arrives, and is answered with connection: close
        assert transport.writes[-1].count(b"connection: close") == 1
        assert transport.closed

        idle, idle_transport = connect(make_app(drain_idle=1.0), loop, clock=clock)
        idle.data_received(get())
        idle.state.draining = True
        idle.shutdown()
        clock.advance(0.9)
        assert not idle_transport.closed
        clock.advance(0.2)
        assert idle_transport.closed

    run(main)


def test_an_idle_server_keeps_no_timer() -> None:
    async def main() -> None:
        clock = FakeClock()
        conn, transport = connect(make_app(keepalive_timeout=1.0), asyncio.get_running_loop(),
                                  clock=clock)
        conn.data_received(get())
        clock.advance(2.0)
        assert transport.closed
        conn.connection_lost(None)
        clock.advance(5.0)  # the sweep and the date clock stop with the last connection
        assert clock.pending == 0

    run(main)
