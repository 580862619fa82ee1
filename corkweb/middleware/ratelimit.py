"""Rate limits: a token bucket per key, in this worker's memory or shared through Redis.

    app.use(RateLimit("100/minute"))                         # per client address, per worker
    api = app.router("/api", RedisRateLimit("1000/hour", name="api"))   # across every worker
    login = app.router("", RateLimit("5/minute", burst=5, key=by_form_user))

**Algorithm.** A token bucket of ``burst`` tokens (default: the limit) refilled at
``limit / period``, kept as one number per key — the "theoretical arrival time" of the generic
cell rate algorithm (GCRA): the moment at which the bucket would be full again. A request
spends one token: it is allowed when the bucket is not empty, and the stored time moves one
emission interval forward. One number per key is what makes the Redis variant a single atomic
script with one key and a TTL, and the memory variant one dict entry; a sliding-window log
would need one entry per request.

**Key.** By default the client's address as ``res.get_remote_address()`` reports it: the TCP
peer, or behind a trusted proxy the client that ``X-Forwarded-For`` names
(``App(trusted_proxies=...)``) — so the proxy's own address never ends up sharing one bucket
among all clients, and a client cannot pick its own key by sending the header directly.
``key=fn`` takes ``fn(res, req) -> str | None`` (``None``: not limited — e.g. for staff).

**Answers.** Every answer of a limited route carries the headers of the IETF draft
"RateLimit header fields for HTTP": ``ratelimit-limit``, ``ratelimit-remaining``,
``ratelimit-reset`` (seconds until the bucket is full) and ``ratelimit-policy``
(``100;w=60``). Over the limit: ``429 Too Many Requests`` with ``retry-after`` (seconds,
rounded up) and the same headers; the handler is not called.

With typed handlers, a limit is also a dependency: ``_: None = Depends(limit.dependency)``.

``RateLimit`` keeps its buckets in the worker's memory (with ``--workers 4`` a client gets 4
buckets; the limit is per worker). ``RedisRateLimit`` shares them through Redis: one ``EVALSHA``
round trip per request on one pipelined connection per worker (no client package needed), the
URL from ``url=`` or the app's Redis setting (``CORKWEB_REDIS``, else ``CORKWEB_PUBSUB``). If
Redis cannot be reached the request is let through (``fail_open=True``, one warning per
outage) or refused with 503 (``fail_open=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import re
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..config import ENV_PUBSUB, ENV_REDIS, env_value
from ..errors import ServiceUnavailable, TooManyRequests
from ..request import Request
from ..response import Response

__all__ = ["RateLimit", "RedisRateLimit", "parse_rate"]

log = logging.getLogger("corkweb.error")

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
            "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*([a-z]+?)s?\s*$")

#: ``ENV_REDIS``, then ``CORKWEB_PUBSUB`` when it is a Redis URL: the default of RedisRateLimit.


def parse_rate(rate: str) -> tuple[int, float]:
    """``"100/minute"``, ``"5 per 10 seconds"``, ``"10/s"`` → ``(limit, period in seconds)``."""
    m = _RATE.match(rate.lower())
    if m is None or m.group(3) not in _PERIODS or int(m.group(1)) < 1:
        raise ValueError(f"rate {rate!r}: expected '<count>/<period>' such as '100/minute', "
                         "'5/10 seconds' (periods: second, minute, hour, day)")
    return int(m.group(1)), float(int(m.group(2) or 1) * _PERIODS[m.group(3)])


class _Limiter:
    """What both variants share: settings, the key, the decision and the headers."""

    def __init__(self, rate: str, *, burst: int | None = None,
                 key: Callable[[Any, Any], str | None] | None = None,
                 name: str | None = None) -> None:
        self.limit, self.period = parse_rate(rate)
        self.burst = burst if burst is not None else self.limit
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self.interval = self.period / self.limit  # seconds per token
        self.key = key
        self.name = name or f"{self.limit}/{int(self.period)}s"
        self._policy = f"{self.burst};w={int(self.period)}"
        # The fixed lines, and a template for the two that change: no per-call checks needed
        # (the values are integers).
        self._lines = (b"ratelimit-limit: %d\r\nratelimit-policy: %b\r\n"
                       % (self.burst, self._policy.encode()))

    def key_of(self, res: Any, req: Any) -> str | None:
        if self.key is not None:
            return self.key(res, req)
        return res.get_remote_address() or "unix"

    def decide(self, stored: float | None, now: float) -> tuple[bool, float, int, float]:
        """GCRA: ``(allowed, new stored time, remaining, seconds to wait)`` for one request."""
        tat = stored if stored is not None and stored > now else now
        new_tat = tat + self.interval
        allow_at = new_tat - self.burst * self.interval
        if now < allow_at:
            return False, tat, 0, allow_at - now
        remaining = int((now - allow_at) / self.interval + 1e-9)
        return True, new_tat, remaining, 0.0

    def headers(self, remaining: int, reset: float) -> list[tuple[str, str]]:
        return [("ratelimit-limit", str(self.burst)), ("ratelimit-remaining", str(remaining)),
                ("ratelimit-reset", str(math.ceil(reset))),
                ("ratelimit-policy", self._policy)]

    def answer(self, res: Any, allowed: bool, remaining: int, reset: float,
               wait: float) -> None:
        if not allowed:
            raise TooManyRequests(
                f"rate limit of {self.limit} per {int(self.period)} s exceeded; retry in "
                f"{math.ceil(wait)} s",
                [("retry-after", str(math.ceil(wait))), *self.headers(remaining, reset)])
        res.write_header_lines((self._lines, b"ratelimit-remaining: %d\r\nratelimit-reset: %d\r\n"
                                % (remaining, math.ceil(reset))))


class RateLimit(_Limiter):
    """In-memory rate limit (per worker process); see the module docstring.

    ``RateLimit(rate, burst=None, key=None, name=None, max_keys=100_000)``: ``rate`` as
    ``"100/minute"``; ``burst``: the bucket size (default: the limit); ``max_keys``: buckets
    kept before the full ones are dropped (a bucket that refilled holds no information).
    """

    def __init__(self, rate: str, *, burst: int | None = None,
                 key: Callable[[Any, Any], str | None] | None = None,
                 name: str | None = None, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(rate, burst=burst, key=key, name=name)
        self.max_keys = max_keys
        self.clock = clock
        self._tats: dict[str, float] = {}

    def hit(self, key: str) -> tuple[bool, int, float, float]:
        """Spend a token of ``key``: ``(allowed, remaining, reset seconds, wait seconds)``."""
        now = self.clock()
        tats = self._tats
        allowed, tat, remaining, wait = self.decide(tats.get(key), now)
        if allowed:
            if len(tats) >= self.max_keys and key not in tats:
                self._prune(now)
            tats[key] = tat
        return allowed, remaining, tat - now, wait

    def _prune(self, now: float) -> None:
        full = [k for k, t in self._tats.items() if t <= now]
        for k in full:
            del self._tats[k]
        if len(self._tats) >= self.max_keys:
            # Still full of active clients: forgetting them all is the bounded-memory choice
            # (they get fresh buckets), logged because it means max_keys is too small.
            log.warning("RateLimit %s: %d active keys, over max_keys; starting afresh",
                        self.name, len(self._tats))
            self._tats.clear()

    def __call__(self, res: Any, req: Any, data: Any) -> Any:
        key = self.key_of(res, req)
        if key is not None:
            allowed, remaining, reset, wait = self.hit(key)
            self.answer(res, allowed, remaining, reset, wait)
        return data if data is not None else True

    def dependency(self, res: Response, req: Request) -> None:
        """For typed handlers: ``_=Depends(limit.dependency)`` limits that handler."""
        self(res, req, None)


# One atomic step on Redis: read the key's time, decide, store it with a TTL, answer.
# Times are milliseconds of Redis's own clock (TIME), so workers on several hosts agree.
_SCRIPT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
"""


def redis_url_from_environment() -> str | None:
    url = env_value(ENV_REDIS)
    if url:
        return url
    pubsub = env_value(ENV_PUBSUB) or ""
    return pubsub if pubsub.startswith(("redis://", "rediss://", "unix://")) else None


class _RedisFailure(Exception):
    """Redis could not answer: unreachable, timed out, or an error reply."""


def _command(*parts: bytes) -> bytes:
    """A command in RESP, Redis's wire format: an array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%b\r\n" % (len(part), part))
    return b"".join(out)


class _RedisLink:
    """One connection to Redis for a limiter, per event loop.

    Commands are pipelined on it and the replies matched to them in order (Redis answers in
    the order it was asked). PERF: redis-py's asyncio client cost ~45 µs of CPU per EVALSHA
    here (connection pool, parser classes); this link ~8 µs. Any failure — connection refused
    or lost, a reply late by more than ``timeout`` — fails every command in flight with
    :class:`_RedisFailure` and closes the link; the next command connects again.
    """

    def __init__(self, url: str, timeout: float, script: bytes) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.path = parts.path if parts.scheme == "unix" else ""
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.username = parts.username
        self.password = parts.password
        query = dict(item.partition("=")[::2] for item in parts.query.split("&") if item)
        db = query.get("db") or (parts.path.strip("/") if parts.scheme != "unix" else "")
        self.db = int(db) if db else 0
        self.timeout = timeout
        self.script = script
        self.sha = hashlib.sha1(script).hexdigest().encode()
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._connecting: asyncio.Future[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def _connect(self) -> None:
        try:
            if self.scheme == "unix":
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(self.path), self.timeout)
            else:
                context = ssl.create_default_context() if self.scheme == "rediss" else None
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=context), self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise _RedisFailure(f"cannot connect: {exc or type(exc).__name__}") from None
        setup = []
        if self.password is not None:
            setup.append(_command(b"AUTH", *([self.username.encode()] if self.username else []),
                                  self.password.encode()))
        if self.db:
            setup.append(_command(b"SELECT", b"%d" % self.db))
        setup.append(_command(b"SCRIPT", b"LOAD", self.script))
        writer.write(b"".join(setup))
        try:
            for _ in setup:
                reply = await asyncio.wait_for(_read_reply(reader), self.timeout)
                if isinstance(reply, _RedisFailure):
                    raise reply
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                _RedisFailure) as exc:
            writer.close()
            raise _RedisFailure(f"setting up the connection: {exc or type(exc).__name__}"
                                ) from None
        self._writer = writer
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader, writer))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pending = self._pending
        try:
            while True:
                reply = await _read_reply(reader)
                if pending:
                    fut = pending.popleft()
                    if not fut.done():  # a late reply to a command that timed out: dropped
                        if isinstance(reply, _RedisFailure):
                            fut.set_exception(reply)
                        else:
                            fut.set_result(reply)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self._broken(writer, f"connection lost: {exc or type(exc).__name__}")

    def _broken(self, writer: asyncio.StreamWriter, why: str) -> None:
        if self._writer is writer:
            self._writer = None
        writer.close()
        failure = _RedisFailure(why)
        while self._pending:
            fut = self._pending.popleft()
            if not fut.done():
                fut.set_exception(failure)

    async def evalsha(self, *args: bytes) -> Any:
        """``EVALSHA`` of the script with ``args`` (numkeys, keys, arguments)."""
        if self._writer is None:
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._connect())
            connecting = self._connecting
            try:
                await asyncio.shield(connecting)
            finally:
                if connecting.done() and self._connecting is connecting:
                    self._connecting = None
        writer = self._writer
        if writer is None:  # pragma: no cover - lost between connecting and now
            raise _RedisFailure("connection lost")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append(fut)
        writer.write(_command(b"EVALSHA", self.sha, *args))
        late = loop.call_later(self.timeout, self._expire, fut, writer)
        try:
            return await fut
        finally:
            late.cancel()

    def _expire(self, fut: asyncio.Future[Any], writer: asyncio.StreamWriter) -> None:
        if not fut.done():
            self._broken(writer, f"no answer within {self.timeout} s")

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._broken(writer, "closed")
        task = self._reader_task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _read_reply(reader: asyncio.StreamReader) -> Any:
    """One RESP reply: an int, bytes, None, a list, or a :class:`_RedisFailure` for ``-ERR``."""
    line = await reader.readuntil(b"\r\n")
    kind, rest = line[:1], line[1:-2]
    if kind == b":":
        return int(rest)
    if kind == b"+":
        return bytes(rest)
    if kind == b"-":
        return _RedisFailure(rest.decode("utf-8", "replace"))
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        return (await reader.readexactly(size + 2))[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [await _read_reply(reader) for _ in range(count)]
    raise ValueError(f"unexpected reply from Redis: {bytes(line[:40])!r}")


class RedisRateLimit(_Limiter):
    """Rate limit shared by every worker and host through Redis; see the module docstring.

    ``RedisRateLimit(rate, url=None, burst=None, key=None, name=None,
    prefix="corkweb:ratelimit:", fail_open=True, timeout=0.5)``. Give each limiter its own
    ``name`` when several share a Redis (the default name is the rate). ``url``:
    ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or
    ``unix:///path/to/redis.sock?db=0``.
    """

    def __init__(self, rate: str, *, url: str | None = None, burst: int | None = None,
                 key: Callable[[Any, Any], str | None] | None = None,
                 name: str | None = None, prefix: str = "corkweb:ratelimit:",
                 fail_open: bool = True, timeout: float = 0.5) -> None:
        super().__init__(rate, burst=burst, key=key, name=name)
        found = url or redis_url_from_environment()
        if not found:
            raise ValueError("RedisRateLimit needs a Redis URL: url='redis://host:6379/0', or "
                             f"set {ENV_REDIS} (or CORKWEB_PUBSUB to a Redis URL)")
        if not found.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"not a Redis URL: {found!r} (redis://host:port/db, rediss://, "
                             "unix://path)")
        self.url: str = found
        self.prefix = (prefix + self.name + ":").encode()
        self.fail_open = fail_open
        self.timeout = timeout
        self._args = (b"%r" % (self.interval * 1000.0), b"%d" % self.burst)
        self._links: dict[Any, _RedisLink] = {}  # event loop -> its link
        self._down = False

    def _link(self) -> _RedisLink:
        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        if link is None:
            self._links = {k: v for k, v in self._links.items() if not k.is_closed()}
            link = self._links[loop] = _RedisLink(self.url, self.timeout, _SCRIPT.encode())
        return link

    async def hit(self, key: str) -> tuple[bool, int, float, float]:
        """Spend a token of ``key`` on Redis: ``(allowed, remaining, reset s, wait s)``."""
        allowed, remaining, reset_ms, wait_ms = await self._link().evalsha(
            b"1", self.prefix + key.encode(), *self._args)
        return bool(allowed), int(remaining), reset_ms / 1000, wait_ms / 1000

    async def __call__(self, res: Any, req: Any, data: Any) -> Any:
        key = self.key_of(res, req)
        if key is None:
            return data if data is not None else True
        try:
            allowed, remaining, reset, wait = await self.hit(key)
        except _RedisFailure as exc:
            if not self._down:
                self._down = True
                log.warning("RedisRateLimit %s: Redis at %s unreachable (%s); %s until it is "
                            "back", self.name, self.url, exc,
                            "letting requests through" if self.fail_open else "answering 503")
            if self.fail_open:
                return data if data is not None else True
            raise ServiceUnavailable("rate limiter unavailable") from None
        if self._down:
            self._down = False
            log.warning("RedisRateLimit %s: Redis at %s is back", self.name, self.url)
        self.answer(res, allowed, remaining, reset, wait)
        return data if data is not None else True

    async def dependency(self, res: Response, req: Request) -> None:
        """For typed handlers: ``_=Depends(limit.dependency)`` limits that handler."""
        await self(res, req, None)

    async def close(self) -> None:
        """Close this event loop's connection (an ``on_shutdown`` hook, or tests)."""
        link = self._links.pop(asyncio.get_running_loop(), None)
        if link is not None:
            await link.close()
