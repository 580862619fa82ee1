"""Tier 2: each corking rule of DESIGN.md §1, counted on a recording transport."""

from __future__ import annotations

import asyncio
import threading

import pytest
from conftest import parse_responses
from protocol_helpers import connect, get, settle

from corkweb import App, middleware


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def run(loop: asyncio.AbstractEventLoop, coro):
    return loop.run_until_complete(coro)


# Rule 1: callbacks are corked ------------------------------------------------------------

def test_status_headers_cookie_and_end_leave_in_one_write(loop) -> None:
    app = App(templates=None)

    @app.get("/")
    def home(res, req):
        res.write_status(201)
        res.write_header("x-one", "1")
        res.write_header("x-two", "2")
        res.write_header("x-three", "3")
        res.set_cookie("session", "abc", httponly=True, secure=True, samesite="Strict")
        res.end("done")

    conn, t = connect(app, loop)
    conn.data_received(get("/"))
    assert len(t.writes) == 1
    (r,) = parse_responses(t.data)
    assert r.status == 201 and r.body == b"done"
    assert r.header("x-three") == "3"
    assert r.header("set-cookie") == "session=abc; Path=/; Secure; HttpOnly; SameSite=Strict"


def test_streamed_chunks_in_one_callback_leave_in_one_write(loop) -> None:
    app = App(templates=None)

    @app.get("/")
    def home(res, req):
        for i in range(10):
            res.write(f"part{i} ")
        res.end("end")

    conn, t = connect(app, loop)
    conn.data_received(get("/"))
    assert len(t.writes) == 1
    (r,) = parse_responses(t.data)
    assert r.header("transfer-encoding") == "chunked"
    assert r.body == b"".join(b"part%d " % i for i in range(10)) + b"end"


def test_middleware_header_and_handler_end_one_write(loop) -> None:
    def add_header(res, req, data):
        res.write_header("x-mw", "yes")
        return True

    async def async_mw(res, req, data):
        await asyncio.sleep(0)
        res.write_header("x-async-mw", "yes")
        return {"user": "u"}

    app2 = App(templates=None)
    app2.use(add_header)
    app2.get("/sync", lambda res, req: res.end("s"))
    app2.get("/mixed", middleware(async_mw, lambda res, req, data: res.end("m")))
    conn, t = connect(app2, loop)
    conn.data_received(get("/sync"))
    assert len(t.writes) == 1 and b"x-mw: yes" in t.writes[0]

    async def go():
        conn.data_received(get("/mixed"))
        await settle(loop)

    run(loop, go())
    assert len(t.writes) == 2, t.writes
    assert b"x-mw: yes" in t.writes[1] and b"x-async-mw: yes" in t.writes[1]


# Rule 2: every segment of an async handler is corked ---------------------------------------

def test_end_after_await_is_one_write(loop) -> None:
    app = App(templates=None)

    @app.get("/")
    async def home(res, req):
        await asyncio.sleep(0)
        res.write_status(202).write_header("x-a", "1").set_cookie("c", "v")
        res.end("after await")

    conn, t = connect(app, loop)

    async def go():
        conn.data_received(get("/"))
        await settle(loop)

    run(loop, go())
    assert len(t.writes) == 1
    (r,) = parse_responses(t.data)
    assert r.status == 202 and r.body == b"after await"


def test_each_segment_is_one_write(loop) -> None:
    app = App(templates=None)

    @app.get("/")
    async def home(res, req):
        res.write("a")
        res.write("b")
        await asyncio.sleep(0)
        res.write("c")
        res.write("d")
        await asyncio.sleep(0)
        res.write("e")
        res.end("f")

    conn, t = connect(app, loop)

    async def go():
        conn.data_received(get("/"))
        await settle(loop)

    run(loop, go())
    assert len(t.writes) == 3
    assert parse_responses(t.data)[0].body == b"abcdef"


def test_req_stays_valid_after_await(loop) -> None:
    app = App(templates=None)

    @app.get("/users/:id")
    async def user(res, req):
        await asyncio.sleep(0)
        res.end(f"{req.get_parameter('id')} {req.get_query('q')} {req.get_header('x-h')} "
                f"{req.preserve() is req}")

    conn, t = connect(app, loop)

    async def go():
        conn.data_received(get("/users/7?q=z", b"X-H: hv\r\n"))
        await settle(loop)

    run(loop, go())
    assert parse_responses(t.data)[0].body == b"7 z hv True"


# Rule 3: foreign callbacks are coalesced per loop tick ---------------------------------------

def test_writes_from_a_timer_callback_leave_in_one_write(loop) -> None:
    app = App(templates=None)

    @app.get("/")
    def home(res, req):
        def later():
            res.write_status(200)
            res.write("x")
            res.write("y")
            res.end("z")

        res.on_aborted(lambda r: None)
        asyncio.get_event_loop().call_soon(later)

    conn, t = connect(app, loop)

    async def go():
        asyncio.set_event_loop(loop)
        conn.data_received(get("/"))
        assert t.writes == []
        await settle(loop)

    run(loop, go())
    assert len(t.writes) == 1
    assert parse_responses(t.data)[0].body == b"xyz"


def test_writes_from_another_thread_leave_in_one_write(loop) -> None:
    app = App(templates=None)
    done = asyncio.Event()

    @app.get("/")
    def home(res, req):
        res.on_aborted(lambda r: None)
        ev_loop = asyncio.get_event_loop()

        def worker():
            def answer():
                res.write_header("x-from", "thread")
                res.write("1")
                res.end("2")
                done.set()

            ev_loop.call_soon_threadsafe(answer)

        threading.Thread(target=worker).start()

    conn, t = connect(app, loop)

    async def go():
        asyncio.set_event_loop(loop)
        conn.data_received(get("/"))
        await asyncio.wait_for(done.wait(), 5)
        await settle(loop)

    run(loop, go())
    assert len(t.writes) == 1
    assert parse_responses(t.data)[0].header("x-from") == "thread"


# Rule 4: pipelining is batched, in order -----------------------------------------------------

def test_sixteen_pipelined_requests_one_write_in_order(loop) -> None:
    app = App(templates=None)
    app.get("/:n", lambda res, req: res.end("r" + req.get_parameter("n")))
    conn, t = connect(app, loop)
    conn.data_received(b"".join(get(f"/{i}") for i in range(16)))
    assert len(t.writes) == 1
    assert [r.body for r in parse_responses(t.data)] == [b"r%d" % i for i in range(16)]


def test_async_handler_holds_later_responses_and_keeps_order(loop) -> None:
    app = App(templates=None)

    @app.get("/slow")
    async def slow(res, req):
        await asyncio.sleep(0.01)
        res.end("slow")

    app.get("/fast/:n", lambda res, req: res.end("fast" + req.get_parameter("n")))
    conn, t = connect(app, loop)

    async def go():
        conn.data_received(get("/fast/1") + get("/slow") + get("/fast/2") + get("/fast/3"))
        assert len(t.writes) == 1  # /fast/1 answered in the read's scope
        await asyncio.sleep(0.05)

    run(loop, go())
    assert [r.body for r in parse_responses(t.data)] == [b"fast1", b"slow", b"fast2", b"fast3"]
    # the slow answer and the two held after it leave together, in the handler's last step
    assert len(t.writes) == 2


# Rule 5: one corked socket per thread ------------------------------------------------------

def test_corking_a_second_connection_flushes_the_first(loop) -> None:
    other: dict = {}
    app = App(templates=None)

    @app.get("/park")
    def park(res, req):
        other["res"] = res
        res.on_aborted(lambda r: None)

    @app.get("/go")
    def go_(res, req):
        res.write_header("x-first", "1")
        res.write("first-part")
        other["res"].cork(lambda r: r.end("other"))  # corks connection B: flushes A
        res.end("first-end")

    conn_b, tb = connect(app, loop)
    conn_b.data_received(get("/park"))
    conn_a, ta = connect(app, loop, state=conn_b.state)
    conn_a.data_received(get("/go"))
    assert len(tb.writes) == 1 and len(ta.writes) == 2
    # A's first part went out before B's write, and A's end after it
    assert ta.order[0] < tb.order[0] < ta.order[1]


def test_cork_rejects_a_coroutine_function(loop) -> None:
    app = App(templates=None)
    seen = {}

    @app.get("/")
    def home(res, req):
        async def cb(r):
            pass

        with pytest.raises(TypeError, match="synchronous"):
            res.cork(cb)
        seen["ok"] = True
        res.end("ok")

    conn, t = connect(app, loop)
    conn.data_received(get("/"))
    assert seen["ok"] and len(t.writes) == 1


def test_nested_scopes_are_free(loop) -> None:
    app = App(templates=None)

    @app.get("/")
    def home(res, req):
        res.cork(lambda r: r.cork(lambda r2: r2.write("a")))
        res.cork_end("b")

    conn, t = connect(app, loop)
    conn.data_received(get("/"))
    assert len(t.writes) == 1


# Rule 6: order independence ----------------------------------------------------------------

def test_status_after_headers_and_cookies_is_honoured(loop) -> None:
    app = App(templates=None)

    @app.get("/")
    def home(res, req):
        res.write_header("x-a", "1").set_cookie("c", "v").write_status(404).end("nf")

    conn, t = connect(app, loop)
    conn.data_received(get("/"))
    (r,) = parse_responses(t.data)
    assert r.status == 404 and r.header("x-a") == "1" and r.header("set-cookie")


# Rule 7: helpers that always cork ------------------------------------------------------------

@pytest.mark.parametrize("helper", ["cork_end", "send", "redirect"])
def test_helpers_cork_from_foreign_callbacks(loop, helper) -> None:
    app = App(templates=None)

    @app.get("/")
    def home(res, req):
        res.on_aborted(lambda r: None)

        def later():
            if helper == "cork_end":
                res.cork_end({"a": 1})
            elif helper == "send":
                res.send("txt", content_type="text/x-thing", status=418, headers={"x-h": "v"})
            else:
                res.redirect("/elsewhere")
            # a second connection's tick flush must not add a write for this one
        asyncio.get_event_loop().call_soon(later)

    conn, t = connect(app, loop)

    async def go():
        asyncio.set_event_loop(loop)
        conn.data_received(get("/"))
        await settle(loop)

    run(loop, go())
    assert len(t.writes) == 1
    (r,) = parse_responses(t.data)
    if helper == "send":
        assert r.status == 418 and r.header("content-type") == "text/x-thing"
    if helper == "redirect":
        assert r.status == 302 and r.header("location") == "/elsewhere"
