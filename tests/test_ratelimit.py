"""Rate limits on real sockets: the token bucket in memory (a fake clock for refills), per
route and per key, behind a trusted proxy; and shared by two apps through a real redis-server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from scaling_helpers import RedisServer, free_port, needs_redis

from corkweb import App, Depends, RateLimit, RedisRateLimit
from corkweb.middleware.ratelimit import parse_rate
from corkweb.testing import TestServer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hello(res: Any, req: Any) -> None:
    res.end("ok")


def test_parse_rate() -> None:
    assert parse_rate("100/minute") == (100, 60.0)
    assert parse_rate("5 per 10 seconds") == (5, 10.0)
    assert parse_rate("10/s") == (10, 1.0)
    assert parse_rate("1000/hour") == (1000, 3600.0)
    for bad in ("100", "0/minute", "5/fortnight", "x/s"):
        with pytest.raises(ValueError, match="expected '<count>/<period>'"):
            parse_rate(bad)


def test_bucket_headers_429_and_refill(serve: Callable[..., TestServer]) -> None:
    clock = Clock()
    app = App(templates=None)
    app.router("", RateLimit("3/minute", clock=clock)).get("/limited", hello)
    app.get("/free", hello)
    server = serve(app)
    with httpx.Client(base_url=server.url) as c:
        seen = [c.get("/limited") for _ in range(3)]
        assert [r.status_code for r in seen] == [200, 200, 200]
        assert [r.headers["ratelimit-remaining"] for r in seen] == ["2", "1", "0"]
        assert seen[0].headers["ratelimit-limit"] == "3"
        assert seen[0].headers["ratelimit-policy"] == "3;w=60"
        assert seen[2].headers["ratelimit-reset"] == "60"  # a full bucket again in 60 s
        r = c.get("/limited")
        assert r.status_code == 429 and "rate limit of 3 per 60 s exceeded" in r.text
        assert r.headers["retry-after"] == "20"  # one token every 20 s
        assert r.headers["ratelimit-remaining"] == "0"
        assert c.get("/free").status_code == 200  # another route: not limited
        clock.now += 20  # one token back
        assert c.get("/limited").status_code == 200
        assert c.get("/limited").status_code == 429
        clock.now += 60
        assert c.get("/limited").headers["ratelimit-remaining"] == "2"


def test_key_function_and_burst(serve: Callable[..., TestServer]) -> None:
    clock = Clock()

    def by_user(res: Any, req: Any) -> str | None:
        user = req.get_header("x-user")
        return None if user == "staff" else user or "anonymous"

    app = App(templates=None)
    app.router("", RateLimit("1/second", burst=2, key=by_user, clock=clock)).get("/", hello)
    server = serve(app)
    for user in ("ada", "bob"):
        codes = [httpx.get(server.url, headers={"x-user": user}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
    codes = [httpx.get(server.url, headers={"x-user": "staff"}).status_code for _ in range(5)]
    assert codes == [200] * 5  # key None: not limited


def test_client_behind_a_trusted_proxy(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None, trusted_proxies=["127.0.0.1"])
    app.router("", RateLimit("1/minute", clock=Clock())).get("/", hello)
    server = serve(app)

    def status(client_ip: str) -> int:
        return httpx.get(server.url, headers={"x-forwarded-for": client_ip}).status_code

    assert [status("203.0.113.5"), status("203.0.113.5"), status("198.51.100.7")] == [
        200, 429, 200]  # one bucket per client, not one for the proxy


def test_memory_is_bounded() -> None:
    clock = Clock()
    limit = RateLimit("1/second", max_keys=10, clock=clock)
    for i in range(10):
        assert limit.hit(f"k{i}")[0]
    clock.now += 5  # every bucket is full again: nothing worth keeping
    assert limit.hit("new")[0]
    assert len(limit._tats) == 1


# -- Redis: the limit shared by two apps (two workers) ----------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@needs_redis
def test_shared_through_redis(serve: Callable[..., TestServer],
                              redis_server: RedisServer) -> None:
    servers = []
    for _ in range(2):
        app = App(templates=None)
        limiter = RedisRateLimit("3/minute", url=redis_server.url, name="t")
        app.router("", limiter).get("/", hello)
        app.on_shutdown(limiter.close)
        servers.append(serve(app))
    a, b = servers
    codes = [httpx.get(s.url).status_code for s in (a, b, a, b, a)]
    assert codes == [200, 200, 200, 429, 429]
    r = httpx.get(b.url)
    assert r.status_code == 429 and 19 <= int(r.headers["retry-after"]) <= 20
    assert r.headers["ratelimit-limit"] == "3"


@needs_redis
def test_concurrent_requests_are_counted_exactly(serve: Callable[..., TestServer],
                                                 redis_server: RedisServer) -> None:
    import asyncio

    app = App(templates=None)
    limiter = RedisRateLimit("5/minute", url=redis_server.url, name="burst")
    app.router("", limiter).get("/", hello)
    app.on_shutdown(limiter.close)
    server = serve(app)

    async def burst() -> list[int]:
        async with httpx.AsyncClient() as client:
            answers = await asyncio.gather(*(client.get(server.url) for _ in range(20)))
        return sorted(r.status_code for r in answers)

    # 20 requests in flight at once, pipelined on the worker's one connection to Redis
    assert asyncio.run(burst()) == [200] * 5 + [429] * 15


@needs_redis
def test_redis_restart_is_survived(serve: Callable[..., TestServer], tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    try:
        app = App(templates=None)
        limiter = RedisRateLimit("100/minute", url=redis.url, name="restart")
        app.router("", limiter).get("/", hello)
        app.on_shutdown(limiter.close)
        server = serve(app)
        assert httpx.get(server.url).headers["ratelimit-remaining"] == "99"
        redis.kill()
        r = httpx.get(server.url)
        assert r.status_code == 200 and "ratelimit-remaining" not in r.headers  # fail open
        assert "unreachable" in caplog.text
        redis.start()  # same port, empty: a fresh bucket
        assert httpx.get(server.url).headers["ratelimit-remaining"] == "99"
        assert "is back" in caplog.text
    finally:
        redis.stop()


def test_silent_redis_times_out(serve: Callable[..., TestServer]) -> None:
    import socket

    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        app = App(templates=None)
        fail_open = RedisRateLimit("1/minute", url=url, name="o", timeout=0.2)
        fail_closed = RedisRateLimit("1/minute", url=url, name="c", timeout=0.2,
                                     fail_open=False)
        app.router("", fail_open).get("/open", hello)
        app.router("", fail_closed).get("/closed", hello)
        app.on_shutdown(fail_open.close)
        app.on_shutdown(fail_closed.close)
        server = serve(app)
        start = time.monotonic()
        assert httpx.get(server.url + "/open").status_code == 200
        assert httpx.get(server.url + "/closed").status_code == 503
        assert time.monotonic() - start < 3


def test_redis_down_fails_open_or_closed(serve: Callable[..., TestServer],
                                         caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = App(templates=None)
    fail_open = RedisRateLimit("1/minute", url=url, name="open")
    fail_closed = RedisRateLimit("1/minute", url=url, name="closed", fail_open=False)
    app.router("", fail_open).get("/open", hello)
    app.router("", fail_closed).get("/closed", hello)
    app.on_shutdown(fail_open.close)
    app.on_shutdown(fail_closed.close)
    server = serve(app)
    assert [httpx.get(server.url + "/open").status_code for _ in range(3)] == [200] * 3
    r = httpx.get(server.url + "/closed")
    assert r.status_code == 503 and "rate limiter unavailable" in r.text
    assert caplog.text.count("letting requests through") == 1  # once per outage


def test_redis_url_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORKWEB_REDIS", raising=False)
    monkeypatch.delenv("CORKWEB_PUBSUB", raising=False)
    with pytest.raises(ValueError, match="needs a Redis URL"):
        RedisRateLimit("1/s")
    monkeypatch.setenv("CORKWEB_PUBSUB", "redis://127.0.0.1:1/0")
    assert RedisRateLimit("1/s").url == "redis://127.0.0.1:1/0"


# Module level: typed handlers resolve their annotations from the module.
typed_limit = RateLimit("2/minute", clock=Clock(), name="typed")


def test_typed_dependency(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)

    @app.get("/typed/:n")
    def typed(n: int, _: Annotated[None, Depends(typed_limit.dependency)]) -> dict:
        return {"n": n}

    server = serve(app)
    codes = [httpx.get(f"{server.url}/typed/{i}").status_code for i in range(3)]
    assert codes == [200, 200, 429]
    r = httpx.get(f"{server.url}/typed/9")
    assert r.headers["retry-after"] == "30" and r.headers["ratelimit-limit"] == "2"
