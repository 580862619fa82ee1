"""The C core (``corkweb/wire/_speedups.c``, ``corkweb/server/_speedups.c``) against the Python
code it stands in for, on a recording transport.

``end()``'s C case must produce the bytes ``Exchange._end_general`` produces for the same
call, raise what it raises, and hand everything it does not cover to it. The suite as a whole
runs with the C core (CI builds it) and again, in part, without it (``test_pure_python.py``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_helpers import connect, get, server_state

from corkweb.request import Request
from corkweb.response import Response
from corkweb.server import speedups as server_speedups
from corkweb.server.exchange import DONE, PENDING, TypedBody
from corkweb.server.http import HTTPConnection
from corkweb.testing import RecordingTransport
from corkweb.wire import speedups as wire_speedups
from corkweb.wire.parser import RequestHead

PURE = bool(os.environ.get("CORKWEB_PURE_PYTHON"))
DATE = b"date: Sat, 28 Nov 2026 00:00:00 GMT\r\n"
GENERAL = "_end_general"  # the whole of end() in Python, which the C case stands in for


def test_the_c_core_serves_this_run_unless_pure_python_is_asked_for() -> None:
    # CI installs with a compiler: a build that failed quietly would leave the C path untested.
    if PURE:
        assert wire_speedups.core is None and server_speedups.core is None
        assert RequestHead.__mro__[1].__module__ == "corkweb.wire.parser"
    else:
        assert wire_speedups.core is not None and server_speedups.core is not None
        assert issubclass(Request, wire_speedups.core.HeadBase)
        assert issubclass(Response, server_speedups.core.ExchangeBase)
        assert issubclass(HTTPConnection, server_speedups.core.CorkBase)


def answer(request: bytes, act: Any) -> bytes:
    """What a connection writes when the handler does ``act(res)`` for ``request``."""
    async def main() -> bytes:
        conn, transport = connect(lambda res, req: act(res), asyncio.get_running_loop())
        conn.state.date = DATE
        conn.data_received(request)
        await asyncio.sleep(0)
        return transport.data

    return asyncio.run(main())


REQUESTS = {
    "keep-alive 1.1": get(),
    "HEAD": b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
    "1.0": b"GET / HTTP/1.0\r\nHost: t\r\n\r\n",
    "1.0 keep-alive": b"GET / HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n",
    "close": b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
}

BODIES: list[Any] = [
    "", "Hello, World!", "ünïcödé ✓", "x" * 100_000, b"", b"\x00\xff\r\n", {}, {"a": 1},
    {"nested": [1, 2.5, None, {"b": "ü"}]}, None, bytearray(b"ba"), memoryview(b"mv"),
    [1, 2], TypedBody(b"<p>", b"content-type: text/html\r\n"),
]


@pytest.mark.parametrize("kind", sorted(REQUESTS))
@pytest.mark.parametrize("body", BODIES, ids=lambda b: type(b).__name__ + str(len(repr(b))))
def test_end_writes_what_the_python_end_writes(kind: str, body: Any) -> None:
    request = REQUESTS[kind] * 2  # the second shows the connection's state after the first
    assert answer(request, lambda res: res.end(body)) == \
        answer(request, lambda res: getattr(res, GENERAL)(body))


@pytest.mark.parametrize("before", [
    lambda res: res.write_status(404), lambda res: res.write_status(204),
    lambda res: res.write_header("x-a", "1"), lambda res: res.write_header("content-type", "a/b"),
    lambda res: res.on_finish(lambda r: None), lambda res: res.before_head(lambda r: None),
])
def test_end_after_status_headers_or_hooks_writes_what_the_python_end_writes(before: Any) -> None:
    def act(how: str) -> Any:
        def run(res: Any) -> None:
            before(res)
            getattr(res, how)("body")
        return run

    assert answer(get() * 2, act("end")) == answer(get() * 2, act(GENERAL))


@settings(max_examples=150, deadline=None)
@given(body=st.one_of(st.text(), st.binary(),
                      st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5),
                                      max_size=4)),
       close=st.booleans(), status=st.sampled_from([200, 201, 404]))
def test_end_matches_the_python_end_on_any_body(body: Any, close: bool, status: int) -> None:
    def act(how: str) -> Any:
        def run(res: Any) -> None:
            if status != 200:
                res.write_status(status)
            getattr(res, how)(body, close)
        return run

    assert answer(get(), act("end")) == answer(get(), act(GENERAL))


@pytest.mark.parametrize("body, error", [
    ("\ud800", UnicodeEncodeError),  # a lone surrogate cannot be UTF-8
    ({"a": object()}, TypeError),  # orjson refuses it
])
def test_a_body_that_cannot_be_encoded_raises_and_leaves_the_response_open(
        body: Any, error: type[Exception]) -> None:
    seen: list[Any] = []

    def act(res: Any) -> None:
        with pytest.raises(error):
            res.end(body)
        seen.append(res.phase)
        res.end("after")

    assert answer(get(), act).endswith(b"\r\n\r\nafter")
    assert seen == [PENDING]


def test_end_takes_its_arguments_by_keyword_and_refuses_others() -> None:
    phases: list[Any] = []

    def act(res: Any) -> None:
        with pytest.raises(TypeError):
            res.end("a", False, 3)
        with pytest.raises(TypeError):
            res.end(body="a")
        with pytest.raises(TypeError):
            res.end("a", message="b")
        res.end(message="kw", end_connection=True)
        phases.append(res.phase)

    data = answer(get() * 2, act)
    assert phases == [DONE]  # the second request is never run: the first answer closed
    assert data.endswith(b"connection: close\r\ncontent-length: 2\r\n\r\nkw")


def test_a_response_class_with_its_own_init_is_still_initialised() -> None:
    class Mine(Response):
        def __init__(self, conn: Any, req: Any) -> None:
            super().__init__(conn, req)
            self.extra = "set"

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        state = server_state(lambda res, req: res.end(res.extra), loop)
        state.response_class = Mine  # new_response follows
        conn, transport = connect(None, loop, state=state)
        conn.data_received(get())
        return transport.data

    assert asyncio.run(main()).endswith(b"\r\n\r\nset")


def test_exchanges_heads_and_connections_in_cycles_are_collected() -> None:
    refs: list[weakref.ref[Any]] = []

    def handler(res: Any, req: Any) -> None:
        res.cycle = res  # a cycle through the instance dict
        req.cycle = (req, res)
        refs.extend((weakref.ref(res), weakref.ref(req)))
        res.end("ok")

    def live_connections() -> int:
        return sum(1 for o in gc.get_objects() if type(o) is HTTPConnection)

    async def main() -> None:
        conn, transport = connect(handler, asyncio.get_running_loop())
        conn.data_received(get() * 3)
        conn.connection_lost(None)

    gc.collect()
    before = live_connections()
    asyncio.run(main())
    gc.collect()
    assert len(refs) == 6 and all(ref() is None for ref in refs)
    assert live_connections() == before


def test_each_head_gets_a_header_list_of_its_own() -> None:
    lists: list[list[Any]] = []

    def handler(res: Any, req: Any) -> None:
        lists.append(req.headers)
        req.headers.append((b"x-added", b"by the handler"))
        res.end("ok")

    async def main() -> None:
        conn, _ = connect(handler, asyncio.get_running_loop())
        for _ in range(3):  # the first read goes to llhttp, the next ones to the head table
            conn.data_received(get() * 2)

    asyncio.run(main())
    assert len(lists) == 6 and len({id(x) for x in lists}) == 6
    assert all(x == [(b"host", b"test"), (b"x-added", b"by the handler")] for x in lists)


def test_a_head_class_cannot_take_arguments() -> None:
    with pytest.raises(TypeError):
        Request("GET")
    head = Request()
    assert head.content_length is None and head.has_body is False and head.upgrade is None
    with pytest.raises(AttributeError):
        head.method  # noqa: B018  (set by the parser only)


def test_a_connection_class_that_overrides_write_sees_every_answer() -> None:
    class Counting(HTTPConnection):
        __slots__ = ("sizes",)

        def write(self, data: bytes) -> None:
            self.sizes.append(len(data))
            super().write(data)

    async def main() -> tuple[list[int], bytes]:
        loop = asyncio.get_running_loop()
        conn = Counting(server_state(lambda res, req: res.end("hi"), loop))
        conn.sizes = []
        transport = RecordingTransport()
        conn.connection_made(transport)
        for _ in range(3):
            conn.data_received(get() * 2)
        return conn.sizes, transport.data

    sizes, data = asyncio.run(main())
    assert len(sizes) == 6 and sum(sizes) == len(data)


# -- response_done left to the dispatching connection (Exchange.defer_done) -------------------


def serve(handler: Any, request: bytes, ticks: int = 5, error_handler: Any = None) -> bytes:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        conn, transport = connect(handler, loop)
        if error_handler is not None:
            conn.state.error_handler = error_handler
        conn.data_received(request)
        for _ in range(ticks):
            await asyncio.sleep(0)
        return transport.data

    return asyncio.run(main())


def test_a_handler_that_answers_then_raises_is_logged_and_the_next_request_served(
        caplog: Any) -> None:
    def handler(res: Any, req: Any) -> None:
        res.end(req.path)
        if req.path == "/first":
            raise ValueError("after the answer")

    data = serve(handler, get("/first") + get("/second"))
    assert data.count(b"HTTP/1.1 200 OK") == 2 and data.endswith(b"/second")
    assert "failed after its response was sent" in caplog.text


def test_a_handler_that_answers_and_returns_a_coroutine_has_it_run() -> None:
    ran: list[str] = []

    def handler(res: Any, req: Any) -> Any:
        res.end("now")

        async def afterwards() -> None:
            ran.append(req.path)

        return afterwards()

    data = serve(handler, get("/a") + get("/b"))
    assert data.count(b"HTTP/1.1 200 OK") == 2 and ran == ["/a", "/b"]


def test_an_async_error_handler_answers_a_failed_request_and_the_next_one_runs() -> None:
    def handler(res: Any, req: Any) -> None:
        if req.path == "/fail":
            raise ValueError("no")
        res.end("fine")

    async def on_error(exc: BaseException, res: Any, req: Any) -> None:
        await asyncio.sleep(0)
        res.write_status(418).end("handled")

    data = serve(handler, get("/fail") + get("/ok"), ticks=10, error_handler=on_error)
    assert data.startswith(b"HTTP/1.1 418") and b"handled" in data and data.endswith(b"fine")


def test_an_answer_that_closes_drops_what_was_pipelined_behind_it() -> None:
    def handler(res: Any, req: Any) -> None:
        res.end("bye", end_connection=req.path == "/close")

    data = serve(handler, get("/close") + get("/never"))
    assert data.count(b"HTTP/1.1") == 1 and data.endswith(b"bye")
