"""Hosted ASGI HTTP: a real Starlette app on corkweb, over real sockets (httpx, raw sockets)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from apps.hosted import starlette_app
from conftest import parse_responses, raw_exchange

from corkweb.asgi import HostedApp
from corkweb.testing import TestServer

STATIC = Path(starlette_app.__file__).with_name("static.txt")


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer(HostedApp(starlette_app.app)) as running:
        yield running


def test_plaintext_and_json(server: TestServer) -> None:
    r = httpx.get(server.url + "/plaintext")
    assert (r.status_code, r.text) == (200, "Hello, World!")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == "13" and "date" in r.headers
    r = httpx.get(server.url + "/json")
    assert r.json() == {"message": "Hello, World!"}


def test_scope_carries_path_query_client_and_lifespan_state(server: TestServer) -> None:
    r = httpx.get(server.url + "/info?a=1&b=%C3%A9")
    data = r.json()
    assert data["path"] == "/info" and data["query"] == {"a": "1", "b": "é"}
    assert data["client"][0] == "127.0.0.1" and data["client"][1] > 0
    assert data["scheme"] == "http" and data["http_version"] == "1.1"
    assert data["greeting"] == "hello from lifespan"
    assert httpx.get(server.url + "/nope").status_code == 404


def test_request_body_is_streamed_to_the_app(server: TestServer) -> None:
    body = b"x" * 3_000_000
    r = httpx.post(server.url + "/echo", content=body)
    assert r.text == "3000000 bytes"

    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b"y" * 1000

    r = httpx.post(server.url + "/echo", content=chunks())  # chunked transfer coding
    assert r.text == "50000 bytes"


def test_streamed_response_is_chunked(server: TestServer) -> None:
    with httpx.stream("GET", server.url + "/stream?n=5") as r:
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.read() == b"".join(b"line %d\n" % i for i in range(5))


def test_file_response_uses_pathsend(server: TestServer) -> None:
    r = httpx.get(server.url + "/file")
    assert r.status_code == 200 and r.content == STATIC.read_bytes()
    assert r.headers["content-length"] == str(STATIC.stat().st_size)
    r = httpx.head(server.url + "/file")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(STATIC.stat().st_size)


def test_app_exception_is_logged_and_answered_500(server: TestServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="corkweb.error"):
        r = httpx.get(server.url + "/boom")
    assert r.status_code == 500
    assert any("boom" in str(rec.exc_info and rec.exc_info[1]) for rec in caplog.records)
    assert httpx.get(server.url + "/plaintext").status_code == 200  # still serving


def test_pipelined_requests_keep_their_order(server: TestServer) -> None:
    paths = ["/plaintext", "/json", "/info?n=1", "/stream?n=2", "/plaintext"] * 4
    data = b"".join(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % p.encode() for p in paths)
    raw = raw_exchange(server.port, data, until_close=False, expect=len(paths))
    responses = parse_responses(raw)
    assert len(responses) == len(paths)
    for path, response in zip(paths, responses, strict=True):
        assert response.status == 200
        body = response.body
        if path == "/plaintext":
            assert body == b"Hello, World!"
        elif path == "/json":
            assert body == b'{"message":"Hello, World!"}'
        elif path.startswith("/stream"):
            assert body == b"line 0\nline 1\n"


def test_malformed_request_is_refused_before_the_app(server: TestServer) -> None:
    raw = raw_exchange(server.port, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n"
                       b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    assert raw.startswith(b"HTTP/1.1 400 ")


def test_root_path_is_prefixed_for_a_proxy_that_strips_it() -> None:
    with TestServer(HostedApp(starlette_app.app, root_path="/api")) as running:
        data = httpx.get(running.url + "/info").json()
    assert data["root_path"] == "/api" and data["path"] == "/api/info"


def test_client_behind_a_trusted_proxy() -> None:
    app = HostedApp(starlette_app.app, trusted_proxies="127.0.0.1")
    with TestServer(app) as running:
        r = httpx.get(running.url + "/info", headers={"x-forwarded-for": "203.0.113.7",
                                                      "x-forwarded-proto": "https"})
    data = r.json()
    assert data["client"] == ["203.0.113.7", 0] and data["scheme"] == "https"


def test_client_that_leaves_mid_body_does_not_break_the_server(server: TestServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"z" * 10)
    assert httpx.get(server.url + "/plaintext").text == "Hello, World!"


# -- how calls run: the first step inline, the rest on a pooled task ---------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


async def task_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    seen = request_id.get()  # a value set by an earlier request must never leak in
    request_id.set(scope["query_string"].decode())
    first = asyncio.current_task()
    assert first is not None  # anyio, sniffio and asyncio.timeout need one from line one
    if path == "/timeout":
        async with asyncio.timeout(5):  # tied to the current task across the await
            await asyncio.sleep(0.01)
    elif path == "/anyio":
        with anyio.move_on_after(5):  # a cancel scope entered in the inline step
            await anyio.sleep(0.01)
        await anyio.to_thread.run_sync(time.sleep, 0.001)
    elif path == "/cancel-scope":
        with anyio.move_on_after(0.01) as scope_:
            await anyio.sleep(5)
        assert scope_.cancelled_caught
    same = asyncio.current_task() is first
    body = f"{seen} {request_id.get()} {same}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def task_server() -> Iterator[TestServer]:
    with TestServer(HostedApp(task_app)) as running:
        yield running


@pytest.mark.parametrize("path", ["/plain", "/timeout", "/anyio", "/cancel-scope"])
def test_calls_have_a_task_and_a_context_of_their_own(task_server: TestServer,
                                                      path: str) -> None:
    with httpx.Client(base_url=task_server.url) as client:  # one keep-alive connection
        for i in range(3):
            assert client.get(f"{path}?r{i}").text == f"unset r{i} True"


def test_pipelined_calls_that_suspend_keep_order(task_server: TestServer) -> None:
    paths = [f"/{'anyio' if i % 2 else 'plain'}?p{i}" for i in range(8)]
    raw = raw_exchange(task_server.port, b"".join(
        b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % p.encode() for p in paths),
        until_close=False, expect=len(paths))
    assert [r.body for r in parse_responses(raw)] == [
        f"unset p{i} True".encode() for i in range(8)]


async def careless_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/silent":
        return  # never answers
    await send({"type": "http.response.start", "status": 200, "headers": []})
    if path == "/half":
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        return  # stops in the middle of the body
    await send({"type": "http.response.body", "body": b"once"})
    if path == "/twice":
        await send({"type": "http.response.body", "body": b"again"})


def test_apps_that_answer_never_twice_or_half(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="corkweb.error"), \
            TestServer(HostedApp(careless_app)) as running:
        r = httpx.get(running.url + "/silent")
        assert r.status_code == 500
        r = httpx.get(running.url + "/twice")  # the first answer stands; the second raises
        assert (r.status_code, r.text) == (200, "once")
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(running.url + "/half")  # closed in the middle of the chunked body
        assert httpx.get(running.url + "/ok").text == "once"
    text = caplog.text
    assert "without sending a response" in text
    assert "unexpected ASGI message 'http.response.body' after the whole response" in text
    assert "in the middle of the response body" in text
