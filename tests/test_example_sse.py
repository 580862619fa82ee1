"""examples/sse: the clock stream with Last-Event-ID, and the POST-fed feed."""

from __future__ import annotations

import threading

import httpx
import pytest
from conftest import read_events
from example_loader import load_example

from corkweb.testing import TestClient


@pytest.fixture
def client():
    with TestClient(load_example("sse").create_app(interval=0.01)) as client:
        yield client



def test_page(client) -> None:
    assert "EventSource" in client.get("/").text


def test_clock_resumes_after_last_event_id(client) -> None:
    with client.stream("GET", "/clock", headers={"last-event-id": "9"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        got = read_events(r, 3)
    assert got[0] == "retry: 3000"
    assert got[1] == 'event: tick\nid: 10\ndata: {"tick":10}'
    assert got[2].startswith("event: tick\nid: 11\n")


def test_feed_delivers_posts(client) -> None:
    received: list[str] = []
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", client.url + "/feed", timeout=5) as r:
            connected.set()
            received.extend(read_events(r, 1))

    thread = threading.Thread(target=listen)
    thread.start()
    assert connected.wait(5)
    # The stream's head has arrived, so the listener is registered; post until delivered.
    delivered = 0
    for _ in range(100):
        delivered = client.post("/feed", content=b"hello").json()["delivered"]
        if delivered:
            break
    thread.join(5)
    assert delivered == 1 and received == ["event: message\ndata: hello"]
    # The listener left: its handler notices and unregisters (its finally block ran) before
    # the server stops, so no task is left pending.
    for _ in range(1000):
        if client.post("/feed", content=b"anyone?").json()["delivered"] == 0:
            break
    else:
        raise AssertionError("the feed handler did not stop after its client left")
