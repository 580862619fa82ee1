"""Hosted ASGI WebSockets over real sockets with the ``websockets`` client: Starlette's echo,
and raw apps for subprotocols, accept headers, close codes and the denial response."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from apps.hosted import starlette_app
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from corkweb.asgi import HostedApp
from corkweb.testing import TestServer


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer(HostedApp(starlette_app.app)) as running:
        yield running


def test_text_and_binary_echo(server: TestServer) -> None:
    with connect(server.ws_url + "/ws") as ws:
        ws.send("hi")
        assert ws.recv() == "echo: hi"
        ws.send(b"\x01\x02\x03")
        assert ws.recv() == b"\x03\x02\x01"
        for i in range(20):
            ws.send(f"m{i}")
        assert [ws.recv() for _ in range(20)] == [f"echo: m{i}" for i in range(20)]


def test_subprotocol_is_negotiated(server: TestServer) -> None:
    with connect(server.ws_url + "/ws", subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v2"
        ws.send("x")
        assert ws.recv() == "echo: x"


def test_app_close_code_and_reason_reach_the_client(server: TestServer) -> None:
    with connect(server.ws_url + "/ws") as ws:
        ws.send("close")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "asked to")


def test_large_messages_both_ways(server: TestServer) -> None:
    with connect(server.ws_url + "/ws", max_size=None) as ws:
        payload = bytes(range(256)) * 8192  # 2 MiB
        ws.send(payload)
        assert ws.recv() == payload[::-1]


def test_bad_handshake_is_refused_before_the_app(server: TestServer) -> None:
    r = httpx.get(server.url + "/ws", headers={"upgrade": "websocket", "connection": "upgrade",
                                               "sec-websocket-version": "13"})
    assert r.status_code == 400 and "Sec-WebSocket-Key" in r.text


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"plain"})
        return
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/deny":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"x-why", b"token")]})
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry"})
        return
    if path == "/refuse":
        await send({"type": "websocket.close"})
        return
    if path == "/raise-before":
        raise RuntimeError("failed before accepting")
    await send({"type": "websocket.accept", "headers": [(b"x-accepted", b"yes")],
                "subprotocol": None})
    if path == "/raise-after":
        raise RuntimeError("failed after accepting")
    if path == "/return":
        return  # an open socket is closed normally (1000)
    message = await receive()
    await send({"type": "websocket.send", "text": f"{scope['path']} {message.get('text')}"})
    message = await receive()
    assert message["type"] == "websocket.disconnect"
    raw_events.append(message)


raw_events: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def raw_server() -> Iterator[TestServer]:
    with TestServer(HostedApp(raw_app, lifespan="off")) as running:
        yield running


def test_accept_headers_and_client_close_code(raw_server: TestServer) -> None:
    raw_events.clear()
    with connect(raw_server.ws_url + "/echo") as ws:
        assert ws.response.headers["x-accepted"] == "yes"
        ws.send("hello")
        assert ws.recv() == "/echo hello"
        ws.close(code=4321, reason="bye")
    assert httpx.get(raw_server.url + "/").text == "plain"
    for _ in range(100):  # the disconnect reaches the app within a few loop turns
        if raw_events:
            break
        httpx.get(raw_server.url + "/")
    assert raw_events and raw_events[0]["code"] == 4321


def test_denial_response_extension(raw_server: TestServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(raw_server.ws_url + "/deny")
    response = info.value.response
    assert response.status_code == 401 and response.headers["x-why"] == "token"
    assert response.body == b"no entry"


def test_close_before_accept_is_403(raw_server: TestServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(raw_server.ws_url + "/refuse")
    assert info.value.response.status_code == 403


def test_app_errors(raw_server: TestServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="corkweb.error"):
        with pytest.raises(InvalidStatus) as info:
            connect(raw_server.ws_url + "/raise-before")
        assert info.value.response.status_code == 500
        with connect(raw_server.ws_url + "/raise-after") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    text = caplog.text
    assert "failed before accepting" in text and "failed after accepting" in text
    with connect(raw_server.ws_url + "/return") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_http_and_websocket_scopes_agree_on_what_the_request_says() -> None:
    # The HTTP scope is built inline on the request path and the WebSocket one by the host's
    # scope(): the keys that come from the request itself must be the same in both.
    seen: dict[str, dict[str, Any]] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["greeting"] = "hi"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen[scope["type"]] = scope
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})

    target = "/a%20b/c?x=1&y=%C3%A9"
    with TestServer(HostedApp(app, root_path="/base", lifespan="on")) as srv:
        assert httpx.get(srv.url + target, headers={"x-probe": "1"}).text == "ok"
        with connect(srv.ws_url + target, additional_headers={"x-probe": "1"}) as ws:
            with pytest.raises(ConnectionClosed):
                ws.recv()
    http, websocket = seen["http"], seen["websocket"]
    for key in ("path", "raw_path", "query_string", "root_path", "http_version", "state",
                "server"):
        assert http[key] == websocket[key], key
    assert http["path"] == "/base/a b/c" and http["raw_path"] == b"/base/a%20b/c"
    assert http["query_string"] == b"x=1&y=%C3%A9" and http["state"] == {"greeting": "hi"}
    for scope in (http, websocket):
        assert (b"x-probe", b"1") in scope["headers"]
