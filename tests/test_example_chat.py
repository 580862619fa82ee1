"""examples/chat: the page, and two real WebSocket clients talking through a room."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from example_loader import load_example
from websockets.exceptions import InvalidStatus

from corkweb.testing import TestServer


@pytest.fixture(scope="module")
def server():
    with TestServer(load_example("chat").app) as server:
        yield server


def test_page_has_the_client(server: TestServer) -> None:
    r = httpx.get(server.url + "/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "new WebSocket(url)" in r.text


def test_two_clients_chat(server: TestServer) -> None:
    base = f"ws://127.0.0.1:{server.port}/chat/lobby"

    async def main() -> None:
        async with websockets.connect(base + "?name=ann") as ann:
            assert json.loads(await ann.recv()) == {"type": "welcome", "room": "lobby",
                                                    "members": 1}
            async with websockets.connect(base + "?name=bob") as bob:
                assert json.loads(await bob.recv())["members"] == 2
                assert json.loads(await ann.recv()) == {"type": "join", "name": "bob"}
                await bob.send("hello ann")
                said = {"type": "message", "name": "bob", "text": "hello ann"}
                assert json.loads(await ann.recv()) == said
                assert json.loads(await bob.recv()) == said
            assert json.loads(await ann.recv()) == {"type": "leave", "name": "bob"}

    asyncio.run(asyncio.wait_for(main(), 10))


def test_rooms_are_separate_and_a_name_is_required(server: TestServer) -> None:
    async def main() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/chat/a?name=x") as a:
            await a.recv()
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/chat/b?name=y") as b:
                assert json.loads(await b.recv())["members"] == 1
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/chat/a"):
                pass
        assert info.value.response.status_code == 400

    asyncio.run(asyncio.wait_for(main(), 10))
