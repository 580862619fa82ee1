"""The hostile-input battery against hosted apps: a raw ASGI app and a WSGI app that answer
exactly as the battery's corkweb app does, served by HostedApp with the battery's limits.
Every malformed-request answer, limit and deadline of the HTTP core must hold for them, and
the hosted app must never see what the core refused."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from corkweb.asgi import HostedApp
from corkweb.testing import TestServer

from .helpers import LIMITS, Case, run_case
from .test_framing import CASES as FRAMING
from .test_limits import CASES as LIMIT_CASES
from .test_lines import CASES as LINES
from .test_sequencing import CASES as SEQUENCING

# Every case but the two whose answer is the corkweb app's routing (404 for "OPTIONS *" and
# CONNECT): a hosted app answers those itself, as it would behind any server.
CASES = [case for case in FRAMING + LIMIT_CASES + LINES + SEQUENCING
         if case.id not in ("asterisk-options", "connect-authority")]

seen: list[str] = []  # every request a hosted app answered, so smuggled ones would show


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``"<METHOD> <path> <body length>"`` after reading the whole body (``/noread``: at once,
    unread), as the battery's corkweb app answers."""
    if scope["type"] == "websocket":  # it takes no WebSocket: the upgrade gets plain HTTP
        await receive()
        await send({"type": "websocket.http.response.start", "status": 200, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no WebSocket here"})
        return
    if scope["type"] != "http":
        return
    method, path = scope["method"], scope["raw_path"].decode("latin-1")
    seen.append(path)
    if path == "/noread":
        text = f"{method} {path} unread"
    else:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        text = f"{method} {path} {size}"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": text.encode()})


def wsgi_echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    seen.append(path)
    if path == "/noread":
        text = f"{method} {path} unread"
    else:
        text = f"{method} {path} {len(environ['wsgi.input'].read())}"
    start_response("200 OK", [("content-type", "text/plain; charset=utf-8")])
    return [text.encode()]


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def hosted_server(request: pytest.FixtureRequest) -> Iterator[TestServer]:
    app = asgi_echo if request.param == "asgi" else wsgi_echo
    with TestServer(HostedApp(app, interface=request.param, limits=LIMITS,
                              lifespan="off")) as running:
        yield running


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_battery(hosted_server: TestServer, case: Case, request: pytest.FixtureRequest) -> None:
    if case.id == "upgrade-websocket-not-routed" and "asgi" in request.node.callspec.id:
        # An ASGI app decides on a WebSocket upgrade in its own time; bytes after the request
        # may be frames, so an upgrade it refuses ends the connection after the answer.
        case = dataclasses.replace(case, close=True)
    if case.id.startswith("unread-") and case.close and "wsgi" in request.node.callspec.id:
        # The WSGI app answers from its thread after the read was parsed: the body's error
        # comes first, and the request is refused (400) instead of answered then closed.
        case = dataclasses.replace(case, statuses=(400,), close_header=True)
    seen.clear()
    run_case(hosted_server.port, case)
    assert "/smuggled" not in seen, "a smuggled request reached the hosted app"
    # Whatever the connection did, every call the app got has ended (none waits forever for
    # a body that will not come).
    calls = hosted_server.app.hosted.calls
    asyncio.run_coroutine_threadsafe(calls.wait(3.0), hosted_server.loop).result(5)
    assert calls.active == 0, f"{calls.active} app calls still running"
