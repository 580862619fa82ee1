"""Hosted ASGI answers on the short path: ``http.response.start`` + one whole body handled inside
``send`` (no coroutine per message, a cached checked head) must frame, check and close exactly
as the general path does. Real sockets (httpx, raw sockets) against a raw ASGI app."""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import parse_responses, raw_exchange

from corkweb import App
from corkweb.asgi import HostedApp
from corkweb.testing import TestServer

# Each path answers with these headers (the same list object every time, as apps with
# module-level header lists do, or a fresh copy: the cache must serve both).
HEADS: dict[str, list[Any]] = {
    "/plain": [(b"content-type", b"text/plain"), (b"content-length", b"5")],
    "/lists": [[b"content-type", b"text/plain"], [b"x-kind", b"list"]],  # unhashable pairs
    "/close": [(b"content-type", b"text/plain"), (b"connection", b"close")],
    "/framing": [(b"transfer-encoding", b"chunked"), (b"date", b"yesterday"),
                 (b"x-kept", b"yes")],
    "/bad-name": [(b"bad name", b"x")],
    "/bad-value": [(b"x-injected", b"a\r\nset-cookie: evil=1")],
    "/str-length": [("content-length", "5")],
    "/empty": [(b"content-type", b"text/plain")],
}
STATUS = {"/empty": 204, "/not-modified": 304}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"][len(scope["root_path"]):]  # mounted, the path has the prefix
    if path == "/scope":
        info = (f"{scope['client'][1]} {scope['query_string'].decode()} {scope['raw_path']!r}"
                f" {scope['path']}").encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": info})
        return
    if path == "/gathered":
        # apps that schedule send's awaitable rather than await it directly
        await asyncio.gather(send({"type": "http.response.start", "status": 201,
                                   "headers": [(b"x-via", b"gather")]}))
        await asyncio.ensure_future(send({"type": "http.response.body", "body": b"hi"}))
        return
    if path == "/kept":
        # what send returned, kept and awaited late, twice, or through wait_for and shield
        started = send({"type": "http.response.start", "status": 200, "headers": []})
        assert inspect.isawaitable(started)
        await asyncio.sleep(0)  # a turn of the loop (the call moves to its worker task)
        assert await started is None and await started is None
        sent = send({"type": "http.response.body", "body": b"kept"})
        await asyncio.wait_for(sent, 5)
        await asyncio.shield(sent)
        return
    if path.startswith("/raise"):
        if path == "/raise-later":
            await asyncio.sleep(0.001)  # handed to a worker task, then fails there
        raise ValueError(f"failed at {path}")
    if path == "/later":
        await asyncio.sleep(0)  # a bare yield: the worker's task goes on with the call
        await asyncio.sleep(0.001)  # a future: the task waits on it
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"later"})
        return
    if path.startswith("/sized/"):
        # header sets that differ only by their length, as Starlette's answers do; "/sized/"
        # + "short" announces one byte too few, + "x" adds a refused header, + "Cap" spells
        # the length header a second way
        size = int(path.split("/")[2])
        body = b"s" * size
        headers = [(b"content-type", b"text/plain"),
                   (b"content-length", b"%d" % (size - 1 if path.endswith("short") else size))]
        if path.endswith("/x"):
            headers.append((b"x-bad", b"a\nb"))
        if path.endswith("/Cap"):
            headers.insert(0, (b"Content-Length", b"%d" % size))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    headers = HEADS.get(path, [])
    if path == "/fresh":
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"5")]
    await send({"type": "http.response.start", "status": STATUS.get(path, 200),
                "headers": headers})
    await send({"type": "http.response.body", "body": b"" if path in STATUS else b"hello"})


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer(HostedApp(app)) as running:
        yield running


def test_whole_answers_repeat_identically(server: TestServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for path in ("/plain", "/fresh", "/lists", "/plain"):
            for _ in range(3):  # the second and third use the cached head
                r = client.get(path)
                assert (r.status_code, r.text) == (200, "hello")
                assert r.headers["content-length"] == "5" and "date" in r.headers
                assert r.headers["content-type"] == "text/plain"
        assert client.get("/lists").headers["x-kind"] == "list"


def test_framing_headers_of_the_app_are_corkwebs(server: TestServer) -> None:
    for _ in range(2):
        r = httpx.get(server.url + "/framing")
        assert r.text == "hello" and r.headers["content-length"] == "5"
        assert "transfer-encoding" not in r.headers and r.headers["x-kept"] == "yes"
        assert r.headers["date"] != "yesterday"


def test_connection_close_from_the_app_closes(server: TestServer) -> None:
    data = raw_exchange(server.port, b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n"
                                     b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
    answers = parse_responses(data)
    assert len(answers) == 1 and answers[0].body == b"hello"
    assert b"connection: close" in data.lower()


def test_head_and_bodiless_statuses(server: TestServer) -> None:
    data = raw_exchange(server.port, b"HEAD /plain HTTP/1.1\r\nHost: x\r\n\r\n"
                                     b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n"
                                     b"GET /not-modified HTTP/1.1\r\nHost: x\r\n\r\n",
                        until_close=False, timeout=1.0)
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 5" in head
    assert rest.startswith(b"HTTP/1.1 204")  # no body bytes after the HEAD answer
    empty, not_modified = parse_responses(rest)
    assert empty.status == 204 and "content-length" not in dict(empty.headers)
    assert not_modified.status == 304 and not_modified.body == b""


def test_refused_headers_are_a_500_every_time(server: TestServer,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="corkweb.error"):
        for path in ("/bad-name", "/bad-value", "/str-length", "/bad-value"):
            r = httpx.get(server.url + path)
            assert r.status_code == 500 and "set-cookie" not in r.headers, path
            assert "x-injected" not in r.headers
    assert "invalid header name" in caplog.text and "CR, LF or NUL" in caplog.text
    assert "is set by corkweb" in caplog.text


def test_send_returns_an_awaitable_for_gather_and_ensure_future(server: TestServer) -> None:
    r = httpx.get(server.url + "/gathered")
    assert (r.status_code, r.text, r.headers["x-via"]) == (201, "hi", "gather")


def test_header_sets_differing_by_their_length_are_checked_alike(server: TestServer) -> None:
    # More sizes than either head cache keeps (256), each answered with its own length; the
    # check made once for the set still refuses a bad header whatever the length.
    with httpx.Client(base_url=server.url) as client:
        for size in [*range(1, 300), 5, 1, 299]:
            r = client.get(f"/sized/{size}")
            assert (r.status_code, r.headers["content-length"]) == (200, str(size))
            assert r.text == "s" * size and r.headers["content-type"] == "text/plain"
        for size in (3, 4, 3):
            assert client.get(f"/sized/{size}/x").status_code == 500
            r = client.get(f"/sized/{size}/Cap")  # two spellings of one length: accepted
            assert (r.status_code, r.text) == (200, "s" * size)
        # a length one byte short of the body: refused before anything is written, per size
        for size in (7, 8, 7):
            r = client.get(f"/sized/{size}/short")
            assert r.status_code == 500 and "s" not in r.text


def test_what_send_returns_can_be_kept_and_awaited_again(server: TestServer) -> None:
    # The finished awaitable is one object shared by every call: awaiting it again, late, or
    # through wait_for/shield must neither fail nor answer twice.
    with httpx.Client(base_url=server.url) as client:
        for _ in range(2):
            r = client.get("/kept")
            assert (r.status_code, r.text) == (200, "kept")
        assert client.get("/plain").text == "hello"  # the connection is still in step


def test_scope_is_per_connection_and_per_request(server: TestServer) -> None:
    ports = set()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            me = s.getsockname()[1]
            for query, target in (("a=1", "/scope?a=1"), ("", "/scope"),
                                  ("b=%C3%A9", "/sc%6fpe?b=%C3%A9")):
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                buf = b""
                while not parse_responses(buf):
                    buf += s.recv(4096)
                port, got_query, raw_path, path = parse_responses(buf)[0].body.decode().split(
                    " ")
                assert int(port) == me and got_query == query and path == "/scope"
                assert raw_path == ("b'/sc%6fpe'" if "%6f" in target else "b'/scope'")
            ports.add(me)
    assert len(ports) == 3


def test_a_mounted_app_behind_head_hooks_gets_them(server: TestServer) -> None:
    corkweb_app = App(templates=None)

    def stamp(res: Any, req: Any, data: Any) -> bool:
        # a hook that reads the app's header lines one by one, and adds one
        res.before_head(lambda r: r.write_header(
            "x-stamped", f"{r.headers.get('content-type')} {len(r.headers)}"))
        return True

    corkweb_app.router("/legacy", stamp).mount("/app", app)
    with TestServer(corkweb_app) as running:
        for _ in range(2):
            r = httpx.get(running.url + "/legacy/app/plain")
            assert (r.text, r.headers["x-stamped"], r.headers["content-length"]) == (
                "hello", "text/plain 1", "5")
            r = httpx.get(running.url + "/legacy/app/framing")
            assert (r.text, r.headers["x-stamped"], r.headers["x-kept"]) == (
                "hello", "None 1", "yes")


def test_calls_that_fail_or_wait_leave_the_workers_usable(
        server: TestServer, caplog: pytest.LogCaptureFixture) -> None:
    # One connection, one request at a time: the same pooled worker runs call after call,
    # whether the last one returned, failed at once or failed after waiting.
    with caplog.at_level(logging.ERROR, logger="corkweb.error"), \
            httpx.Client(base_url=server.url) as client:
        for path in ("/raise-now", "/plain", "/raise-later", "/later", "/plain",
                     "/raise-later", "/raise-now", "/later", "/plain"):
            r = client.get(path)
            if path.startswith("/raise"):
                assert r.status_code == 500
            else:
                assert (r.status_code, r.text) == (200, path.strip("/").replace(
                    "plain", "hello"))
    assert caplog.text.count("failed at /raise-later") == 2
    assert caplog.text.count("failed at /raise-now") == 2


class _InstanceApp:
    """An app object whose class has a Python ``__call__`` (as Starlette's and Django's)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"instance %d" % self.calls})


class _StaticApp:
    """One whose ``__call__`` is a staticmethod: it gets no instance."""

    @staticmethod
    async def __call__(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"static"})


def test_app_objects_are_called_as_their_class_says() -> None:
    instance = _InstanceApp()
    with TestServer(HostedApp(instance, interface="asgi")) as running:
        assert [httpx.get(running.url).text for _ in range(2)] == ["instance 1", "instance 2"]
    with TestServer(HostedApp(_StaticApp(), interface="asgi")) as running:
        assert httpx.get(running.url).text == "static"
