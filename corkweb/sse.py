"""Server-Sent Events (the WHATWG HTML "server-sent events" section).

Two ways to stream::

    @app.get("/events")
    async def events(res, req):
        async with EventStream(res, req) as stream:        # sends the head
            async for tick in ticker(after=stream.last_event_id):
                await stream.send(tick, event="tick", id=str(tick))   # False once closed

    @app.get("/feed")
    def feed(res, req):
        return stream_events(res, req, my_async_generator())   # yields str/dict/Event

What the helper does for you:

* the head: ``content-type: text/event-stream``, ``cache-control: no-cache``,
  ``x-accel-buffering: no`` (proxies must not buffer), chunked framing;
* framing: multi-line data split into ``data:`` lines (CR, LF and CRLF all end a line), dicts
  and lists sent as JSON, ``event``/``id`` refused if they hold a line break (``id`` also a NUL),
  ``retry`` as an integer;
* a ``: ping`` comment after ``ping`` seconds without an event, so proxies and load balancers
  keep the connection open;
* ``last_event_id`` from the ``Last-Event-ID`` header (ignored if longer than 1 KiB or with a
  NUL), for resuming;
* backpressure: ``send`` waits while the client reads slower than the events come;
* stopping: when the client leaves, or the server shuts down (noticed within ``check`` seconds,
  1 s by default, well inside the drain timeout), ``send`` returns ``False``, ``closed`` is set,
  and :func:`stream_events` cancels and closes the source generator (its ``finally`` blocks
  run). Closing the stream ends the chunked body properly.

Responses of this type are never compressed by :class:`corkweb.middleware.compression.Compression`
(they are streamed; compression applies to bodies given to ``res.end``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EventStream", "Event", "stream_events", "format_event"]


@dataclass
class Event:
    """One event; ``data`` may be ``str``, ``bytes`` (UTF-8) or anything JSON-serialisable."""

    data: Any = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def format_event(data: Any = None, *, event: str | None = None, id: str | None = None,
                 retry: int | None = None, comment: str | None = None,
                 dumps: Any = None) -> bytes:
    """The wire form of one event, ending with the blank line that dispatches it."""
    out: list[str] = []
    if comment is not None:
        out += [": " + line for line in _lines(comment)]
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError("an SSE event name cannot contain a line break")
        out.append("event: " + event)
    if id is not None:
        if "\n" in id or "\r" in id or "\x00" in id:
            raise ValueError("an SSE id cannot contain a line break or NUL")
        out.append("id: " + id)
    if retry is not None:
        if not isinstance(retry, int) or retry < 0:
            raise ValueError("SSE retry must be a non-negative integer (milliseconds)")
        out.append(f"retry: {retry}")
    if data is not None:
        if isinstance(data, (bytes, bytearray, memoryview)):
            text = bytes(data).decode("utf-8")
        elif isinstance(data, str):
            text = data
        else:
            if dumps is None:
                import orjson

                dumps = orjson.dumps
            text = dumps(data).decode("utf-8")
        out += ["data: " + line for line in _lines(text)]
    if not out:
        raise ValueError("an SSE event needs data, event, id, retry or a comment")
    return ("\n".join(out) + "\n\n").encode("utf-8")


class EventStream:
    """An open ``text/event-stream`` response. Use ``async with EventStream(res, req)``.

    ``ping`` (seconds, 15) is the keep-alive comment period; ``retry`` (milliseconds) is sent
    once at the start; ``headers`` are added to the head; ``check`` (seconds, 1) is how often
    an idle stream looks for a server shutdown.
    """

    def __init__(self, res: Any, req: Any, *, ping: float = 15.0, retry: int | None = None,
                 headers: Mapping[str, str] | None = None, check: float = 1.0) -> None:
        if ping <= 0 or check <= 0:
            raise ValueError("ping and check must be positive")
        self._res = res
        self._loop: asyncio.AbstractEventLoop = res.loop
        self._ping = ping
        self._check = min(check, ping)
        self._retry = retry
        self._headers = headers
        self._dumps = res.options.json_dumps
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._writable: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_sent = 0.0
        self._started = False
        last = req.get_header("last-event-id")
        #: The ``Last-Event-ID`` the client sent when reconnecting, or ``None``.
        self.last_event_id: str | None = (
            last if last is not None and len(last) <= 1024 and "\x00" not in last else None)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> EventStream:
        """Send the head (and ``retry``); called by ``async with``."""
        if self._started:
            return self
        self._started = True
        res = self._res
        res.write_header("content-type", "text/event-stream; charset=utf-8")
        res.write_header("cache-control", "no-cache")
        res.write_header("x-accel-buffering", "no")
        if self._headers:
            res.write_headers(self._headers)
        res.on_aborted(lambda _res: self._close_now())
        res.on_writable(self._on_writable)
        res.write(format_event(retry=self._retry) if self._retry is not None else b"")
        self._last_sent = self._loop.time()
        self._timer = self._loop.call_later(self._check, self._tick)
        return self

    @property
    def closed(self) -> bool:
        """True once the client left, the server began shutting down, or ``close`` ran."""
        return self._closed.done()

    async def wait_closed(self) -> None:
        """Wait until the stream is closed (client gone, shutdown or ``close``)."""
        await asyncio.shield(self._closed)

    def close(self) -> None:
        """End the stream: the chunked body is terminated (the client may reconnect)."""
        self._close_now()
        res = self._res
        if not res.has_responded():
            res.end()

    def _close_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake_writer()

    async def __aenter__(self) -> EventStream:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- sending -----------------------------------------------------------------------------

    async def send(self, data: Any = None, *, event: str | None = None, id: str | None = None,
                   retry: int | None = None, comment: str | None = None) -> bool:
        """Send one event; waits while the client is slow. ``False`` if the stream is closed."""
        if not self._started:
            self.start()
        if isinstance(data, Event):
            data, event, id, retry, comment = (data.data, data.event, data.id, data.retry,
                                                data.comment)
        payload = format_event(data, event=event, id=id, retry=retry, comment=comment,
                               dumps=self._dumps)
        if self.closed or self._res.draining:
            self._close_now()
            return False
        self._res.write(payload)
        self._last_sent = self._loop.time()
        if not self._res.writable:
            self._writable = self._loop.create_future()
            await self._writable
        return not self.closed

    def _on_writable(self, res: Any, offset: int) -> None:
        self._wake_writer()

    def _wake_writer(self) -> None:
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _tick(self) -> None:
        self._timer = None
        if self.closed:
            return
        if self._res.draining or self._res.aborted:
            self._close_now()
            return
        now = self._loop.time()
        if now - self._last_sent >= self._ping:
            self._res.cork(lambda res: res.write(b": ping\n\n"))
            self._last_sent = now
        self._timer = self._loop.call_later(self._check, self._tick)


async def _stream(stream: EventStream, source: AsyncIterable[Any]) -> None:
    iterator = source.__aiter__()
    closed = stream._closed
    try:
        while not stream.closed:
            step = asyncio.ensure_future(iterator.__anext__())
            await asyncio.wait((step, closed), return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                try:
                    await step
                except (asyncio.CancelledError, StopAsyncIteration):
                    pass  # cancelled by us, or the generator had already ended
                break
            try:
                item = step.result()
            except StopAsyncIteration:
                break
            await stream.send(item)  # an Event, or data (str, bytes, dict, ...)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
        stream.close()


def stream_events(res: Any, req: Any, source: AsyncIterable[Any], **options: Any) -> Any:
    """Stream every item of ``source`` (``str``, ``dict``, :class:`Event`, …) as an event.

    Returns a coroutine: ``return stream_events(...)`` from a sync handler, or ``await`` it.
    ``options`` are :class:`EventStream`'s. The source is closed when the client leaves or
    the server shuts down.
    """
    stream = EventStream(res, req, **options)
    stream.start()
    return _stream(stream, source)
