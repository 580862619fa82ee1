"""Pub/sub across processes on a real ``redis-server``.

Two levels: the :class:`RedisBackend` under two ``PubSub`` hubs in this process (recording
subscribers, so counts and order are exact), then two real ``corkweb run`` processes with a
WebSocket client each — a publish in one reaches the other, once, and a Redis crash and
restart is survived. Readiness is Redis's own ``PUBSUB NUMSUB`` and the servers' log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_process import CLIProcess, cli_env
from scaling_helpers import (
    RedisServer,
    needs_redis,
    needs_redis_package,
    redis_command,
    wait_until,
)

from corkweb import App
from corkweb.pubsub import PubSub
from corkweb.pubsub.redis import RedisBackend, hub_from_setting
from corkweb.wire.websocket import BINARY, TEXT, encode_frame

pytestmark = [needs_redis, needs_redis_package]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


class Recorder:
    """A subscriber that records the frames it is sent."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_frame(self, frame: bytes) -> int:
        self.frames.append(frame)
        return 1


async def until(check: Any, what: str, timeout: float = 10.0) -> None:
    """Await until ``check()``; polls the loop every 10 ms (the messages arrive over TCP)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def two_hubs(url: str, a_options: dict[str, Any] | None = None,
                   b_options: dict[str, Any] | None = None,
                   ) -> AsyncIterator[tuple[PubSub, PubSub, RedisBackend, RedisBackend]]:
    """Two ``PubSub`` hubs, each on a started :class:`RedisBackend`; stopped on exit."""
    a = PubSub(RedisBackend(url, **(a_options or {})))
    b = PubSub(RedisBackend(url, **(b_options or {})))
    backend_a, backend_b = a.backend, b.backend
    assert isinstance(backend_a, RedisBackend) and isinstance(backend_b, RedisBackend)
    await backend_a.start()
    await backend_b.start()
    try:
        yield a, b, backend_a, backend_b
    finally:
        await backend_a.stop()
        await backend_b.stop()


# -- the backend inside one process --------------------------------------------------------------


def test_two_hubs_share_topics_through_redis(redis_server: RedisServer) -> None:
    async def main() -> None:
        async with two_hubs(redis_server.url) as (a, b, backend_a, backend_b):
            ra, ra2, rb = Recorder(), Recorder(), Recorder()
            a.subscribe(ra, "chat")
            a.subscribe(ra2, "chat")
            b.subscribe(rb, "chat")
            await backend_a.wait_synced()
            await backend_b.wait_synced()
            # One Redis subscription per topic per process, however many local subscribers.
            assert redis_server.numsub("corkweb:chat") == 2

            frames = [encode_frame(TEXT, b"m%d" % i) for i in range(200)]
            binary = encode_frame(BINARY, bytes(range(256)) * 3)
            for frame in frames[:100]:
                a.publish("chat", frame, ra)  # ra is the sender: not sent back to it
            a.publish("chat", binary)
            for frame in frames[100:]:
                a.publish("chat", frame)
            await until(lambda: len(rb.frames) == 201, "b to receive 201 frames")
            # Order per topic per publisher, bytes unchanged, and a's own subscribers got each
            # message once (delivered locally; the echo from Redis is skipped).
            assert rb.frames == frames[:100] + [binary] + frames[100:]
            assert ra2.frames == rb.frames
            assert ra.frames == [binary] + frames[100:]

            # A publish from b reaches a's subscribers; b's one got it locally, once.
            b.publish("chat", frames[0])
            await until(lambda: len(ra2.frames) == 202, "a to receive b's publish")
            await asyncio.sleep(0.05)  # room for a wrong duplicate to show up
            assert rb.frames.count(frames[0]) == 2 and rb.frames[-1] == frames[0]
            assert len(rb.frames) == 202

            # Reference counting: the channel stays until the last local subscriber leaves.
            a.unsubscribe(ra, "chat")
            await backend_a.wait_synced()
            assert redis_server.numsub("corkweb:chat") == 2
            a.unsubscribe(ra2, "chat")
            await backend_a.wait_synced()
            await until(lambda: redis_server.numsub("corkweb:chat") == 1, "UNSUBSCRIBE")

    asyncio.run(main())


class TickRecorder(Recorder):
    """Counts the end-of-tick flushes a corked connection would make (DESIGN.md §1 rule 3):
    one per loop iteration in which it was written to."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self._scheduled = False

    def send_frame(self, frame: bytes) -> int:
        if not self._scheduled:
            self._scheduled = True
            self.flushes += 1
            asyncio.get_running_loop().call_soon(self._flush)
        return super().send_frame(frame)

    def _flush(self) -> None:
        self._scheduled = False


def test_messages_of_one_read_leave_in_one_write(redis_server: RedisServer) -> None:
    """100 publishes of one loop step: one pipelined write to Redis, and on the other side
    they reach a subscriber within one loop iteration — one write for a real connection."""
    async def main() -> TickRecorder:
        async with two_hubs(redis_server.url) as (a, b, backend_a, backend_b):
            rec = TickRecorder()
            b.subscribe(rec, "x")
            await backend_b.wait_synced()
            for i in range(100):
                a.publish("x", b"m%d" % i)
            await until(lambda: len(rec.frames) == 100, "100 messages")
            return rec

    rec = asyncio.run(main())
    assert rec.frames == [b"m%d" % i for i in range(100)]
    assert rec.flushes <= 2, rec.flushes  # 1 here; 2 if Redis split its write


def test_messages_from_other_programs_become_frames(redis_server: RedisServer) -> None:
    """``redis-cli PUBLISH corkweb:news hi`` reaches WebSocket subscribers as a text frame."""

    async def main() -> None:
        hub = PubSub(RedisBackend(redis_server.url))
        backend = hub.backend
        assert isinstance(backend, RedisBackend)
        await backend.start()
        try:
            rec = Recorder()
            hub.subscribe(rec, "news")
            await backend.wait_synced()
            redis_command(redis_server.port, "PUBLISH", "corkweb:news", "hi")
            redis_command(redis_server.port, "PUBLISH", "corkweb:news", b"\xff\x00")
            await until(lambda: len(rec.frames) == 2, "two foreign messages")
            assert rec.frames == [encode_frame(TEXT, b"hi"), encode_frame(BINARY, b"\xff\x00")]
        finally:
            await backend.stop()

    asyncio.run(main())


def test_outage_is_logged_once_and_survived(redis_server: RedisServer,
                                            caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        fast = {"max_backoff": 0.2}
        async with two_hubs(redis_server.url, fast, fast) as (hub, other, backend, other_backend):
            local, remote = Recorder(), Recorder()
            hub.subscribe(local, "t")
            other.subscribe(remote, "t")
            await backend.wait_synced()
            await other_backend.wait_synced()
            redis_server.kill()
            await until(lambda: not backend.connected, "the outage to be noticed")
            hub.publish("t", b"during")  # reaches the local subscriber only
            assert local.frames == [b"during"]
            await asyncio.sleep(0.5)  # several reconnect attempts fail meanwhile
            redis_server.start()
            await until(lambda: backend.connected and other_backend.connected, "reconnect")
            await backend.wait_synced()
            await other_backend.wait_synced()
            hub.publish("t", b"after")
            await until(lambda: remote.frames == [b"after"], "a publish after the restart")

    with caplog.at_level(logging.DEBUG, logger="corkweb.pubsub"):
        asyncio.run(main())
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "corkweb.pubsub" and r.levelno == logging.WARNING]
    down = [m for m in warnings if "unreachable" in m]
    back = [m for m in warnings if "is back after" in m]
    assert len(down) == 2 and len(back) == 2, warnings  # one of each per backend, no storm
    assert any("1 publishes of this worker reached its own subscribers only" in m for m in back)
    retries = [r for r in caplog.records if "still unreachable" in r.getMessage()]
    assert retries and all(r.levelno == logging.DEBUG for r in retries)


def test_frozen_server_is_noticed_by_the_health_check(redis_server: RedisServer) -> None:
    """SIGSTOP: the TCP connections stay open but Redis answers nothing; the PING health
    check notices, and after SIGCONT the backend is back."""
    async def main() -> None:
        hub = PubSub(RedisBackend(redis_server.url, health_check_interval=0.1,
                                  connect_timeout=0.3, max_backoff=0.2))
        backend = hub.backend
        assert isinstance(backend, RedisBackend) and redis_server.proc is not None
        await backend.start()
        try:
            rec = Recorder()
            hub.subscribe(rec, "f")
            await backend.wait_synced()
            os.kill(redis_server.proc.pid, signal.SIGSTOP)
            try:
                await until(lambda: not backend.connected, "the health check to fail")
            finally:
                os.kill(redis_server.proc.pid, signal.SIGCONT)
            await until(lambda: backend.connected, "reconnect after SIGCONT")
            await backend.wait_synced()
            redis_command(redis_server.port, "PUBLISH", "corkweb:f", "back")
            await until(lambda: rec.frames == [encode_frame(TEXT, b"back")], "a message")
        finally:
            await backend.stop()

    asyncio.run(main())


def test_pending_publishes_are_bounded(redis_server: RedisServer,
                                       caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[Recorder, Recorder]:
        async with two_hubs(redis_server.url, {"max_pending": 5}) as (a, b, backend_a, backend_b):
            local, remote = Recorder(), Recorder()
            a.subscribe(local, "x")
            b.subscribe(remote, "x")
            await backend_a.wait_synced()
            await backend_b.wait_synced()
            for i in range(20):  # in one loop step: the sender cannot run in between
                a.publish("x", b"%d" % i)
            await until(lambda: len(remote.frames) == 5, "the five that fit")
            await until(lambda: "caught up" in caplog.text, "the catch-up line")
            return local, remote

    with caplog.at_level(logging.WARNING, logger="corkweb.pubsub"):
        local, remote = asyncio.run(main())
    assert local.frames == [b"%d" % i for i in range(20)]  # local delivery never drops
    assert remote.frames == [b"%d" % i for i in range(5)]
    assert caplog.text.count("dropping the next ones") == 1
    assert "15 publishes were not forwarded" in caplog.text


def test_app_pubsub_setting(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> None:
    monkeypatch.delenv("CORKWEB_PUBSUB", raising=False)
    assert hub_from_setting(None) is None and hub_from_setting("local") is None
    monkeypatch.setenv("CORKWEB_PUBSUB", redis_server.url)
    app = App(templates=None)
    assert isinstance(app.pubsub.backend, RedisBackend)
    assert app.pubsub.backend.url == redis_server.url
    with pytest.raises(ValueError, match="Redis URL"):
        App(templates=None, pubsub="amqp://elsewhere")


# -- two real server processes ---------------------------------------------------------------


def _server(url: str) -> CLIProcess:
    cli = CLIProcess("run", "pubsub_app:app", "--port", "0", env=cli_env(CORKWEB_PUBSUB=url))
    cli.ready()
    return cli


def test_publish_in_one_process_reaches_the_other(redis_server: RedisServer) -> None:
    from websockets.sync.client import connect

    with _server(redis_server.url) as one, _server(redis_server.url) as two:
        with connect(f"ws://127.0.0.1:{one.port}/ws/room") as c1, \
                connect(f"ws://127.0.0.1:{two.port}/ws/room") as c2:
            wait_until(lambda: redis_server.numsub("corkweb:room") == 2, "both subscriptions")
            # An HTTP publish in process one: each client gets it, exactly once.
            r = httpx.post(f"{one.url}/publish/room", content=b"hello")
            assert r.status_code == 200, r.text
            assert c1.recv(timeout=5) == "hello"
            assert c2.recv(timeout=5) == "hello"
            payload = bytes(range(256))
            httpx.post(f"{one.url}/publish/room?binary=1", content=payload)
            assert c1.recv(timeout=5) == payload  # the next message, not a duplicate
            assert c2.recv(timeout=5) == payload
            # ws.publish from the client of process two: to everyone but the sender, in order.
            for i in range(50):
                c2.send(f"n{i}")
            c2.send(b"\x00\xffbinary")
            assert [c1.recv(timeout=5) for _ in range(51)] == [
                f"n{i}" for i in range(50)] + [b"\x00\xffbinary"]
            httpx.post(f"{two.url}/publish/room", content=b"last")
            assert c2.recv(timeout=5) == "last"  # c2 got none of its own 51 messages
            assert c1.recv(timeout=5) == "last"
        assert one.stop() == 0 and two.stop() == 0, one.output + two.output
    assert "Traceback" not in one.output + two.output


def test_redis_restart_is_survived(redis_server: RedisServer) -> None:
    from websockets.sync.client import connect

    with _server(redis_server.url) as one, _server(redis_server.url) as two:
        with connect(f"ws://127.0.0.1:{one.port}/ws/r") as c1, \
                connect(f"ws://127.0.0.1:{two.port}/ws/r") as c2:
            wait_until(lambda: redis_server.numsub("corkweb:r") == 2, "both subscriptions")
            redis_server.kill()
            for cli in (one, two):
                cli.wait_for(r"Redis at \S+ is unreachable")
            # During the outage a publish reaches the publisher's own subscribers.
            httpx.post(f"{one.url}/publish/r", content=b"local only")
            assert c1.recv(timeout=5) == "local only"
            redis_server.start()
            for cli in (one, two):
                cli.wait_for(r"Redis at \S+ is back after")
            wait_until(lambda: redis_server.numsub("corkweb:r") == 2, "re-subscriptions")
            httpx.post(f"{one.url}/publish/r", content=b"after the restart")
            assert c2.recv(timeout=5) == "after the restart"  # not "local only"
            assert c1.recv(timeout=5) == "after the restart"
        assert one.stop() == 0 and two.stop() == 0
    for cli in (one, two):
        assert cli.output.count("is unreachable") == 1, cli.output  # once per outage


def test_workers_of_one_server_share_publishes(redis_server: RedisServer) -> None:
    """``corkweb run --workers 2``: clients spread over both workers all get a publish."""
    from websockets.sync.client import connect

    env = cli_env(CORKWEB_PUBSUB=redis_server.url)
    with CLIProcess("run", "pubsub_app:app", "--port", "0", "--workers", "2", env=env) as cli:
        cli.ready()
        with ExitStack() as stack:
            clients = []
            # SO_REUSEPORT spreads connections by a hash: open them until both workers hold
            # one (PUBSUB NUMSUB counts one subscription per worker).
            for _ in range(16):
                clients.append(stack.enter_context(connect(f"ws://127.0.0.1:{cli.port}/ws/all")))
                wait_until(lambda: redis_server.numsub("corkweb:all") >= 1, "a subscription")
                if redis_server.numsub("corkweb:all") == 2:
                    break
            wait_until(lambda: redis_server.numsub("corkweb:all") == 2, "both workers")
            for i in range(3):
                httpx.post(f"{cli.url}/publish/all", content=f"m{i}".encode())
            for client in clients:
                assert [client.recv(timeout=5) for _ in range(3)] == ["m0", "m1", "m2"]
        assert cli.stop() == 0, cli.output
