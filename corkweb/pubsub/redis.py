"""Pub/sub across worker processes and machines, on Redis (``App(pubsub="redis://...")``).

Each worker keeps its own :class:`~corkweb.pubsub.PubSub` of local subscribers; this backend
links the workers through Redis PUBLISH/SUBSCRIBE (the ``redis`` package's asyncio client,
``pip install corkweb[redis]``):

* **One Redis subscription per topic per worker**, reference-counted: the first local
  subscriber of a topic SUBSCRIBEs the worker's one subscriber connection to the channel
  ``<prefix><topic>``, the last one to leave UNSUBSCRIBEs it.
* **A publish is delivered locally at once** (the frame serialised once, through each
  subscriber's corked path) **and sent to Redis tagged with this worker's id**; when Redis
  hands the message back to this worker's own subscription, the tag says it is already
  delivered, so a worker's own subscribers get it exactly once.
* **Order**: one task sends every publish of the worker, in order, on one connection
  (pipelined in batches), and one connection receives: per topic and per publisher, messages
  arrive in the order they were published. The frame travels as bytes, so text and binary
  messages round-trip unchanged.
* **Messages from Redis are fanned out through the corked path**: all messages that one read
  from Redis carried reach each subscriber in one write (DESIGN.md §1 rule 3).
* **Outages**: when Redis goes away, one WARNING says so and that publishes now reach this
  worker's subscribers only; the backend reconnects with exponential backoff (logged at DEBUG,
  never a log storm), re-subscribes every topic, and one WARNING says it is back and how many
  publishes could not be forwarded meanwhile. Publishes are not queued during an outage: a
  late burst of stale messages is worse than a gap that the log reports.

Wire format of a message: ``b"cw1" + 8-byte worker id + frame``. A message without the
``cw1`` mark — published by another program, e.g. ``redis-cli PUBLISH corkweb:chat hi`` — is
sent to subscribers as a text frame (binary if it is not UTF-8).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from ..config import ENV_PUBSUB, env_value
from ..errors import IllegalTransition
from ..wire.websocket import BINARY, TEXT, encode_frame
from . import PubSub

__all__ = ["RedisBackend", "Link", "LINK_MOVES", "is_redis_url", "hub_from_setting", "ENV_PUBSUB"]

log = logging.getLogger("corkweb.pubsub")

_MARK = b"cw1"
_ID_SIZE = 8
_HEADER = len(_MARK) + _ID_SIZE

#: URL schemes that name a Redis server (redis-py's ConnectionPool.from_url).
_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis_url(value: str) -> bool:
    """Whether ``value`` names a Redis server (``redis://``, ``rediss://``, ``unix://``)."""
    return value.startswith(_SCHEMES)


class Link(Enum):
    """The state of the backend's link to Redis."""

    STOPPED = "stopped"  # not started, or stopped after the drain
    CONNECTING = "connecting"  # an attempt is under way (the first, or after an outage)
    UP = "up"  # both connections work: publishes go to Redis
    DOWN = "down"  # an outage: publishes stay local until the next attempt succeeds


STOPPED, CONNECTING, UP, DOWN = Link.STOPPED, Link.CONNECTING, Link.UP, Link.DOWN

#: The legal moves of the link; any state may stop (``stop`` cancels whatever runs).
LINK_MOVES: dict[Link, frozenset[Link]] = {
    STOPPED: frozenset((CONNECTING,)),
    CONNECTING: frozenset((UP, DOWN, STOPPED)),
    UP: frozenset((DOWN, STOPPED)),
    DOWN: frozenset((CONNECTING, STOPPED)),
}


class RedisBackend:
    """A :class:`corkweb.pubsub.Backend` that carries publishes through Redis.

    ``RedisBackend("redis://host:6379/0", channel_prefix="corkweb:", min_backoff=0.1,
    max_backoff=2.0, health_check_interval=30.0)``. The app starts it with the worker's event
    loop (``start``) and stops it after the drain (``stop``); ``App(pubsub="redis://...")``
    does both. ``health_check_interval``: an idle subscriber connection sends a PING this
    often; no answer by the next one means the link is dead (a silent network cut, a frozen
    server), and the backend reconnects.
    """

    def __init__(self, url: str, *, channel_prefix: str = "corkweb:",
                 min_backoff: float = 0.1, max_backoff: float = 2.0,
                 connect_timeout: float = 5.0, health_check_interval: float = 30.0,
                 max_pending: int = 100_000) -> None:
        try:
            from redis.asyncio import ConnectionPool
            from redis.exceptions import RedisError
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("the Redis pub/sub backend needs the redis package: "
                              "pip install 'corkweb[redis]'") from None
        if not is_redis_url(url):
            raise ValueError(f"not a Redis URL: {url!r} (redis://host:port/db, rediss://, "
                             "unix://path)")
        self.url = url
        # No read timeout: the subscriber connection is silent until something is published.
        # A dead peer is noticed by TCP (keepalive) or a failing send.
        self._pool = ConnectionPool.from_url(url, socket_connect_timeout=connect_timeout,
                                             socket_timeout=None, socket_keepalive=True)
        self._errors: tuple[type[BaseException], ...] = (
            RedisError, OSError, EOFError, asyncio.TimeoutError)
        self.connect_timeout = connect_timeout
        self._prefix = channel_prefix.encode()
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.health_check_interval = health_check_interval
        #: Publishes waiting for Redis beyond this are dropped (counted, logged): bounded
        #: memory when Redis is slower than the publishers.
        self.max_pending = max_pending
        self._overflow = 0
        self._ping_unanswered = False
        #: This worker's tag on what it publishes (to skip its own echo).
        self.origin = os.urandom(_ID_SIZE)
        self._tag = _MARK + self.origin
        self._deliver: Callable[[str, bytes, Any], int] | None = None
        self._topics: dict[str, int] = {}  # topic -> local references
        self._subscribed: set[str] = set()  # what Redis knows, on the current connection
        self._changed: set[str] = set()  # topics to reconcile with Redis
        self._awaiting = 0  # SUBSCRIBE confirmations not yet received
        self._sent: asyncio.Event | None = None  # set by the sender when the outbox is empty
        self._outbox: deque[tuple[bytes, bytes]] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._sub: Any = None
        self._pub: Any = None
        self._link = STOPPED
        self._down_since: float | None = None
        self._not_forwarded = 0
        #: Set after the first connection attempt (ok or not): ``start`` waits for it.
        self._first: asyncio.Future[None] | None = None
        #: Set when the current connection is up and every wanted topic is subscribed.
        self._synced: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<RedisBackend {self.where} {self._link.value}>"

    @property
    def where(self) -> str:
        """The server, for log lines (never the password)."""
        kw = self._pool.connection_kwargs
        if "path" in kw:
            return f"unix:{kw['path']}"
        return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"

    @property
    def connected(self) -> bool:
        """True while both connections to Redis are up."""
        return self._link is UP

    @property
    def link(self) -> Link:
        """Where the link to Redis stands (``Link``)."""
        return self._link

    def _move(self, to: Link) -> None:
        if to not in LINK_MOVES[self._link]:
            raise IllegalTransition(f"Redis pub/sub link: cannot move from {self._link.name} "
                                    f"to {to.name}")
        self._link = to

    # -- Backend protocol (called by PubSub, synchronously) ---------------------------------

    def attach(self, deliver: Callable[[str, bytes, Any], int]) -> None:
        self._deliver = deliver

    def publish(self, topic: str, frame: bytes, sender: Any) -> int:
        """Deliver locally now; queue for Redis (the other workers). Returns the local count."""
        deliver = self._deliver
        assert deliver is not None, "backend used before PubSub attached it"
        count = deliver(topic, frame, sender)
        if self._link is UP:
            outbox = self._outbox
            if len(outbox) >= self.max_pending:
                self._overflowed()
                return count
            outbox.append((self._prefix + topic.encode(), self._tag + frame))
            wake = self._wake
            if wake is not None and not wake.is_set():
                wake.set()
        else:
            self._not_forwarded += 1
        return count

    def _overflowed(self) -> None:
        if not self._overflow:
            log.warning("pub/sub: %d publishes wait for Redis at %s; dropping the next ones "
                        "(they reach this worker's subscribers only) until it catches up",
                        len(self._outbox), self.where)
        self._overflow += 1

    def topic_added(self, topic: str) -> None:
        refs = self._topics.get(topic, 0)
        self._topics[topic] = refs + 1
        if refs == 0:
            self._changed.add(topic)
            self._kick()

    def topic_removed(self, topic: str) -> None:
        refs = self._topics.get(topic, 0)
        if refs <= 1:
            self._topics.pop(topic, None)
            self._changed.add(topic)
            self._kick()
        else:
            self._topics[topic] = refs - 1

    def _kick(self) -> None:
        if self._synced is not None:
            self._synced.clear()
        if self._wake is not None:
            self._wake.set()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect on the running loop; returns after the first attempt, whatever its outcome
        (the server serves during an outage, delivering locally)."""
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._synced = asyncio.Event()
        self._first = loop.create_future()
        self._task = loop.create_task(self._run(), name="corkweb-redis-pubsub")
        await asyncio.shield(self._first)

    async def stop(self) -> None:
        """Disconnect (after the server drained: what was published is flushed first)."""
        task, self._task = self._task, None
        if task is None:
            return
        if self._link is UP and self._outbox:
            # Let the sender flush the last publishes (bounded).
            self._sent = asyncio.Event()
            try:
                await asyncio.wait_for(self._sent.wait(), 2.0)
            except asyncio.TimeoutError:
                log.warning("pub/sub: %d publishes not sent to Redis at shutdown",
                            len(self._outbox))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass  # we cancelled it ourselves: the expected end
        await self._disconnect()
        await self._pool.disconnect()
        self._move(STOPPED)

    async def wait_synced(self, timeout: float = 10.0) -> None:
        """Until Redis knows every current topic of this worker (for tests and readiness)."""
        assert self._synced is not None, "start() first"
        await asyncio.wait_for(self._synced.wait(), timeout)

    # -- the connection manager ---------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self.min_backoff
        while True:
            self._move(CONNECTING)
            try:
                # Bounded: a frozen server accepts TCP connections but answers nothing.
                await asyncio.wait_for(self._connect(), self.connect_timeout)
            except self._errors as exc:
                await self._disconnect()
                self._went_down(exc)
                self._first_done()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = self.min_backoff
            self._came_up()
            assert self._synced is not None
            self._synced.clear()
            self._check_synced()  # at once if there is nothing to subscribe
            self._first_done()
            tasks = (asyncio.ensure_future(self._read()), asyncio.ensure_future(self._send()),
                     asyncio.ensure_future(self._watch()))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._mark_down()
                self._synced.clear()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self._disconnect()
            failure = next((t.exception() for t in done
                            if not t.cancelled() and t.exception()), None)
            if failure is not None and not isinstance(failure, self._errors):
                # A bug, not an outage: say so with the traceback, then carry on.
                log.error("pub/sub: the Redis backend failed", exc_info=failure)
            self._went_down(failure or ConnectionError("connection closed"))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    def _first_done(self) -> None:
        if self._first is not None and not self._first.done():
            self._first.set_result(None)

    async def _connect(self) -> None:
        self._sub = self._pool.make_connection()
        self._pub = self._pool.make_connection()
        await self._sub.connect()
        await self._pub.connect()
        # Everything wanted must be (re)subscribed on the new connection.
        self._subscribed.clear()
        self._awaiting = 0
        self._ping_unanswered = False
        self._changed.update(self._topics)
        self._outbox.clear()  # empty already: _mark_down counted what was left

    async def _disconnect(self) -> None:
        for conn in (self._sub, self._pub):
            if conn is not None:
                try:
                    await conn.disconnect(nowait=True)
                except self._errors as exc:  # already broken: nothing more to tell
                    log.debug("pub/sub: disconnecting from Redis: %r", exc)
        self._sub = self._pub = None

    def _mark_down(self) -> None:
        """From now on publishes stay local; those still queued were not forwarded."""
        if self._link is UP:
            self._not_forwarded += len(self._outbox)
            self._outbox.clear()
        if self._link is not DOWN:
            self._move(DOWN)

    def _went_down(self, exc: BaseException) -> None:
        """Log an outage: WARNING once when it starts, DEBUG for each failed retry."""
        self._mark_down()
        reason = str(exc) or type(exc).__name__
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("pub/sub: Redis at %s is unreachable (%s); publishes reach this "
                        "worker's subscribers only until it is back; reconnecting",
                        self.where, reason)
        else:
            log.debug("pub/sub: Redis at %s still unreachable: %s", self.where, reason)

    def _came_up(self) -> None:
        self._move(UP)
        if self._down_since is not None:
            log.warning("pub/sub: Redis at %s is back after %.1f s; %d publishes of this "
                        "worker reached its own subscribers only meanwhile", self.where,
                        time.monotonic() - self._down_since, self._not_forwarded)
            self._down_since = None
        else:
            log.info("pub/sub: connected to Redis at %s", self.where)
        self._not_forwarded = 0

    # -- the three tasks of a connected session: send, read, watch ---------------------------

    async def _send(self) -> None:
        """Subscription changes and publishes, in order, until the connection breaks."""
        wake = self._wake
        assert wake is not None and self._synced is not None
        sub, pub, outbox = self._sub, self._pub, self._outbox
        while True:
            if self._changed:
                await self._reconcile(sub)
            if outbox:
                # PERF: everything queued since the last round leaves in one pipelined write.
                batch = [("PUBLISH", channel, payload) for channel, payload in outbox]
                outbox.clear()
                await pub.send_packed_command(pub.pack_commands(batch), check_health=False)
                for _ in batch:
                    await pub.read_response(push_request=False)
                continue
            if self._overflow:
                log.warning("pub/sub: Redis caught up; %d publishes were not forwarded",
                            self._overflow)
                self._overflow = 0
            if self._sent is not None:
                self._sent.set()
            wake.clear()
            if not self._changed and not outbox:
                await wake.wait()

    async def _watch(self) -> None:
        """PING on the subscriber connection every ``health_check_interval``; no PONG by the
        next one means a dead link that TCP alone would notice only after hours."""
        sub = self._sub
        while True:
            await asyncio.sleep(self.health_check_interval)
            if self._ping_unanswered:
                raise ConnectionError(
                    f"no answer to PING within {self.health_check_interval:g} s")
            self._ping_unanswered = True
            await sub.send_packed_command(sub.pack_command("PING"), check_health=False)

    async def _reconcile(self, sub: Any) -> None:
        changed, self._changed = self._changed, set()
        add = [t for t in changed if t in self._topics and t not in self._subscribed]
        drop = [t for t in changed if t not in self._topics and t in self._subscribed]
        commands: list[tuple[Any, ...]] = []
        if add:
            commands.append(("SUBSCRIBE", *(self._prefix + t.encode() for t in add)))
        if drop:
            commands.append(("UNSUBSCRIBE", *(self._prefix + t.encode() for t in drop)))
        if commands:
            # The confirmations arrive on the subscriber connection, read by _read.
            await sub.send_packed_command(sub.pack_commands(commands), check_health=False)
            self._subscribed.update(add)
            self._subscribed.difference_update(drop)
            self._awaiting += len(add)
        self._check_synced()

    def _check_synced(self) -> None:
        if not self._changed and not self._awaiting and self._synced is not None:
            self._synced.set()

    async def _read(self) -> None:
        """Messages from Redis to the local subscribers, until the connection breaks."""
        sub, prefix, tag = self._sub, self._prefix, self._tag
        skip = len(prefix)
        while True:
            # push_request: SUBSCRIBE confirmations and messages are replies for us, not
            # "push" notifications for redis-py's own handler (redis>=5 with RESP3 in mind).
            response = await sub.read_response(push_request=True)
            if response is None:
                raise ConnectionError("Redis closed the connection")
            if response == b"PONG":  # PING while subscribed to nothing (RESP2)
                self._ping_unanswered = False
                continue
            kind = response[0]
            if kind == b"message":
                data = response[2]
                if data[:_HEADER] == tag:
                    continue  # our own publish, already delivered locally
                topic = response[1][skip:].decode("utf-8", "surrogateescape")
                if data[:3] == _MARK:
                    frame = data[_HEADER:]
                else:
                    frame = _foreign_frame(data)
                self._deliver_safely(topic, frame)
            elif kind == b"subscribe":
                self._awaiting -= 1
                self._check_synced()
            elif kind == b"pong":
                self._ping_unanswered = False
            elif kind == b"unsubscribe":
                pass  # Redis confirms an UNSUBSCRIBE we sent: nothing to do
            else:
                raise ConnectionError(f"unexpected reply from Redis: {response!r:.200}")

    def _deliver_safely(self, topic: str, frame: bytes) -> None:
        deliver = self._deliver
        assert deliver is not None
        try:
            deliver(topic, frame, None)
        except Exception:  # a subscriber failed: log it, keep the other topics flowing
            log.exception("pub/sub: delivering a message of topic %r failed", topic)


def _foreign_frame(data: bytes) -> bytes:
    """A message published by another program: text if it is UTF-8, else binary."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return encode_frame(BINARY, data)
    return encode_frame(TEXT, data)


#: ``CORKWEB_PUBSUB=redis://host:6379/0``: the default of ``App(pubsub=...)``.


def hub_from_setting(value: Any) -> PubSub | None:
    """What ``App(pubsub=...)`` means: ``None`` reads ``CORKWEB_PUBSUB``; ``None``, ``""`` or
    ``"local"`` give ``None`` (the app's default, in-process hub); a Redis URL, a
    :class:`~corkweb.pubsub.Backend` or a :class:`~corkweb.pubsub.PubSub` give the hub."""
    if value is None:
        value = env_value(ENV_PUBSUB)
    if value is None or value == "local":
        return None
    if isinstance(value, PubSub):
        return value
    if isinstance(value, str):
        if not is_redis_url(value):
            raise ValueError(f"pubsub={value!r}: expected 'local' or a Redis URL "
                             "(redis://host:port/db, rediss://..., unix:///path)")
        return PubSub(RedisBackend(value))
    if all(callable(getattr(value, name, None)) for name in
           ("attach", "publish", "topic_added", "topic_removed")):
        return PubSub(value)
    raise TypeError(f"pubsub must be a URL, a Backend or a PubSub, not {value!r}")
