"""One HTTP request of a hosted ASGI application: the scope, ``receive`` and ``send``.

The hosted app is driven through the handler interface the server calls for corkweb apps —
``handler(res, req)`` — and answers through the public ``Response`` API, so corkweb's limits,
deadlines, malformed-input answers and corking apply to it unchanged:

* ``http.response.start`` only records the status and headers; the first body message writes
  the head and that body together, so start + body sent within one step of the app leave in
  one ``transport.write`` (DESIGN.md §1 rules 1–2: every step of the app is a cork scope).
* The app's call starts inside the read that carried the request, with a pooled task as the
  current one, and needs no task of its own unless it suspends (``corkweb/asgi/runner.py``).
* The request body is streamed through ``res.on_data`` (pausing the socket while the app lags
  behind); ``http.disconnect`` comes from ``res.on_aborted`` or the end of the response.
* Body messages with ``more_body`` wait on ``res.on_writable`` when the client reads slower
  than the app writes (backpressure).

An app that raises is logged with its traceback and answered 500 if nothing was sent; if the
head was out, the connection is closed. One that returns without answering is logged and
answered 500; one that stops in the middle of a body has its connection closed. A message
out of order raises ``RuntimeError`` in the app, as uvicorn does.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Awaitable, Generator
from enum import IntEnum
from typing import Any

from ..body import ClientDisconnected
from ..server.exchange import ABORTED as GONE
from ..wire.headers import FRAMING
from ..wire.writer import header_lines

__all__ = ["HTTPCycle", "ASGI_INFO", "Calls", "Phase"]

log = logging.getLogger("corkweb.error")

#: ``scope["asgi"]``: ASGI 3, HTTP spec 2.4 (``send`` after a disconnect raises an OSError).
ASGI_INFO = {"version": "3.0", "spec_version": "2.4"}

#: Request body bytes buffered for an app that does not read them yet, above which the socket
#: stops being read until the app calls ``receive`` again.
BODY_HIGH_WATER = 256 * 1024


class Phase(IntEnum):
    """Where the answer of one hosted request stands.

    PERF: an IntEnum, so the transition table's ``(phase, type)`` keys hash in C (Enum's
    ``__hash__`` is Python code: two calls per request, 0.3 µs)."""

    START = 0  # nothing sent by the app
    HEAD = 1  # http.response.start received; nothing written yet
    BODY = 2  # head and part of the body written (more_body)
    DONE = 3  # the whole response was handed to the connection


START, HEAD, BODY, DONE = Phase.START, Phase.HEAD, Phase.BODY, Phase.DONE

#: Which message may come in which phase (STYLE rule 4); anything else raises in the app.
SEND_TRANSITIONS: dict[tuple[Phase, str], Phase] = {
    (START, "http.response.start"): HEAD,
    (HEAD, "http.response.body"): BODY,  # DONE when more_body is false
    (BODY, "http.response.body"): BODY,  # DONE when more_body is false
    (HEAD, "http.response.pathsend"): DONE,
}

# Reading side: no body at all, a body nobody asked for yet, being read, read to the end.
NO_BODY, UNREAD, READING, READ = 0, 1, 2, 3

_NO_CONTENT = frozenset((204, 304))
_new = object.__new__
_FRAMING = frozenset(name.encode() for name in FRAMING)


@types.coroutine
def _sent() -> Generator[Any, None, None]:
    """What ``send`` returns for a message it handled at once (made once, run to its end)."""
    return
    yield  # a generator: types.coroutine makes it awaitable


#: An awaitable already finished, the same for every call, loop and thread: a generator-based
#: coroutine that has run to its end. Awaiting it again returns ``None`` at once (only native
#: coroutines refuse a second await), and ``asyncio.gather``/``ensure_future`` take it as a
#: coroutine whose task ends with ``None``.
#: PERF: the interpreter resumes a finished generator without a call or an allocation: an
#: ``await`` of it costs ~200 instructions, against ~750 for an object whose ``__await__``
#: returns an empty iterator (callgrind).
_finished: Any = _sent()
next(_finished, None)  # run to its end
SENT: Awaitable[None] = _finished


class _Head:
    """The app's ``http.response.start`` headers as corkweb writes them: the checked lines
    it keeps, the content-length it announced (-1: none) and whether it asked to close."""

    __slots__ = ("lines", "block", "length", "close")

    def __init__(self, pairs: Any) -> None:
        length = -1
        close = False
        keep = []
        for pair in pairs:
            lname = pair[0].lower()
            if lname == b"content-length":
                length = int(pair[1])
            elif lname == b"connection":
                if b"close" in pair[1].lower():
                    close = True
            elif lname != b"transfer-encoding" and lname != b"date":
                keep.append(pair)  # corkweb frames the body and writes the date line itself
        #: all or nothing: a refused header raises before any line is kept
        self.lines = tuple(header_lines(keep, _FRAMING))
        self.block = b"".join(self.lines)  # the same lines, joined
        self.length = length
        self.close = close


#: Checked heads by the app's headers, as a tuple. PERF: most apps answer with the same few
#: header sets, so the check and formatting run once per distinct set, not per answer (a
#: dict lookup instead of a loop over the pairs: ~2.5k instructions per raw ASGI request).
#: Bounded: emptied when full.
_HEADS: dict[tuple[Any, ...], _Head] = {}
_HEADS_MAX = 256
#: Checked heads by the app's headers less their ``content-length`` pair: the lines corkweb
#: writes never hold the app's length (it writes its own), so a set that differs only by the
#: length of each answer — Starlette's and FastAPI's, whose bodies vary in size — is checked
#: once. PERF: an answer of a new length costs ~8k instructions (two pairs: the loop, two
#: lookups, the entry) instead of ~16k for the whole check (callgrind). Bounded like _HEADS.
_SHAPES: dict[tuple[Any, ...], _Head] = {}


def _checked_head(headers: Any) -> _Head:
    key = headers if headers.__class__ is tuple else tuple(headers)
    try:
        head = _HEADS.get(key)
    except TypeError:  # unhashable pairs (lists, bytearrays): checked every time
        return _Head(key)
    if head is None:
        head = _shaped_head(key)
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        _HEADS[key] = head
    return head


def _shaped_head(key: tuple[Any, ...]) -> _Head:
    """The head of ``key`` made from the checked head of the same pairs without their
    ``content-length``, when that is the only pair that names one."""
    length: Any = None
    shape = []
    for pair in key:
        if pair[0] == b"content-length":
            length = pair[1]  # the last one counts, as in _Head
        else:
            shape.append(pair)
    if length is None:
        return _Head(key)
    shape_key = tuple(shape)
    base = _SHAPES.get(shape_key)
    if base is None:
        base = _Head(shape_key)  # raises for a refused header, as the whole set would
        if base.length >= 0:
            # Another spelling of content-length among the rest: no shortcut for this set.
            return _Head(key)
        if len(_SHAPES) >= _HEADS_MAX:
            _SHAPES.clear()
        _SHAPES[shape_key] = base
    head = _new(_Head)
    head.lines = base.lines
    head.block = base.block
    head.close = base.close
    head.length = int(length)
    return head


class HTTPCycle:
    """``receive``/``send`` of one request; ``res``/``req`` are corkweb's objects for it."""

    # PERF: what every request reads is in slots, set when the cycle is made (a slot is read
    # and stored by specialised instructions); the fields only some requests use are
    # class-level defaults in the instance dict (Python 3.11 looks a class-level default up
    # the slow way, ~200 instructions a read): a raw ASGI request 1.2k instructions less
    # than with every field a class-level default (callgrind).
    __slots__ = ("res", "req", "phase", "reading", "waiter", "status", "headers", "__dict__")
    close = False  # the app said "connection: close"
    watching = False  # res.on_aborted registered
    length = -1
    chunks: list[bytes]
    buffered = 0
    body_end = False
    paused = False

    def __init__(self, res: Any, req: Any) -> None:
        self.res = res
        self.req = req
        self.phase = START
        self.reading = UNREAD if req.has_body else NO_BODY
        self.waiter: asyncio.Future[None] | None = None
        # status and headers are set by http.response.start, before anything reads them
        self.status: int
        self.headers: Any

    # -- receive ------------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        reading = self.reading
        if reading == NO_BODY:
            self.reading = READ
            return {"type": "http.request", "body": b"", "more_body": False}
        if reading == READ:
            res = self.res
            if not res.aborted and self.phase is not DONE:
                # http.disconnect comes when the client leaves or once the response is sent.
                await self._wait()
            return {"type": "http.disconnect"}
        res = self.res
        if reading == UNREAD:
            if self.req.expect_continue and not self.watching:
                # The call runs inside the read that carried the head: let the rest of that
                # read be parsed first, so a client that sent its body anyway gets no 100.
                self._watch()
                await asyncio.sleep(0)
            self.reading = READING
            self.chunks: list[bytes] = []
            self.buffered = 0
            self.body_end = False
            self.paused = False
            res.on_data(self._on_data)  # delivers what arrived already; sends 100 Continue
        if not self.chunks and not self.body_end:
            if res.has_responded():
                # The client left, or the exchange is over (answered by the app, or by the
                # connection for a malformed body): the rest of the body will not come.
                return {"type": "http.disconnect"}
            await self._wait()
            if not self.chunks and not self.body_end:
                return {"type": "http.disconnect"}
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused:
            self.paused = False
            res.resume()
        more = not self.body_end
        if not more:
            self.reading = READ
        return {"type": "http.request", "body": body, "more_body": more}

    def _on_data(self, res: Any, chunk: bytes, is_end: bool) -> None:
        if chunk:
            self.chunks.append(chunk)
            self.buffered += len(chunk)
            if self.buffered > BODY_HIGH_WATER and not self.paused and not is_end:
                self.paused = True
                res.pause()  # the app reads slower than the client sends: stop reading
        if is_end:
            self.body_end = True
        self._wake()

    def _wait(self) -> asyncio.Future[None]:
        if not self.watching:
            self._watch()
        waiter = self.waiter
        if waiter is None or waiter.done():
            waiter = self.waiter = asyncio.get_running_loop().create_future()
        return waiter

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _aborted(self, res: Any) -> None:
        self._wake()

    def _watch(self) -> None:
        """Hear of a client that leaves, and of an answer the server gave instead of the app
        (a malformed body is answered 400 by the connection): a waiting ``receive`` then
        returns ``http.disconnect``. The registered ``on_aborted`` also tells the connection
        that this exchange goes on after the handler returned."""
        self.watching = True
        self.res.on_aborted(self._aborted)
        self.res.on_complete(self._aborted)

    # -- send ---------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> Awaitable[None]:
        """ASGI ``send``. Not a coroutine function: the messages of a whole answer sent at
        once are handled here and a finished awaitable returned (ASGI asks ``send`` for an
        awaitable only; Granian's is no coroutine either); the rest goes to :meth:`_send`.

        PERF: no coroutine object per message, and the answer of ``http.response.start`` +
        one ``http.response.body`` joined by ``res.end_with_lines`` from a cached checked
        head: a raw ASGI request 101k -> 72k instructions (in-process, callgrind)."""
        phase = self.phase
        if phase is HEAD:
            res = self.res
            if (message["type"] == "http.response.body" and not message.get("more_body")
                    and res.phase is not GONE):
                body = message.get("body", b"")
                headers = self.headers
                try:  # PERF: _checked_head's cache lookup without its call (~400 instructions)
                    head = _HEADS[headers if headers.__class__ is tuple else tuple(headers)]
                except (KeyError, TypeError):
                    head = _checked_head(headers)
                length = head.length
                if length < 0 or length == len(body):
                    res.end_with_lines(self.status, head.block, body, head.close)
                    self.phase = DONE
                    if self.waiter is not None:
                        self._wake()  # a receive() waiting for http.disconnect returns now
                    return SENT
        elif phase is START:
            if message["type"] == "http.response.start" and self.res.phase is not GONE:
                self.status = message["status"]
                self.headers = message.get("headers", ())
                self.phase = HEAD
                return SENT
        return self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        """Every ``send`` that :meth:`send` does not finish at once."""
        kind = message["type"]
        phase = self.phase
        res = self.res
        if res.aborted:
            # ASGI HTTP 2.4: a send on a closed connection raises an OSError subclass.
            raise ClientDisconnected("the client closed the connection")
        nxt = SEND_TRANSITIONS.get((phase, kind))
        if nxt is None:
            raise RuntimeError(f"unexpected ASGI message {kind!r} after {self._said()}")
        if nxt is HEAD:
            self.status = message["status"]
            self.headers = message.get("headers", ())
            self.phase = HEAD
            return
        if nxt is BODY:
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if phase is HEAD:
                self._write_head()
            length = self.length
            if length >= 0:
                sent = res.get_write_offset()
                if sent + len(body) > length:
                    raise RuntimeError(f"response body longer than its content-length "
                                       f"({length})")
                if not more and phase is HEAD and len(body) == length:
                    res.end(body, self.close)
                    ok = True
                else:
                    ok, done = res.try_end(body, length, self.close)
                    if not more and not done:
                        raise RuntimeError(f"response body shorter than its content-length "
                                           f"({sent + len(body)} of {length} bytes)")
            elif not more:
                res.end(body, self.close)
                ok = True
            else:
                res.write(body)
                ok = res.is_writable()
            if not more:
                self.phase = DONE
                self._wake()  # a receive() waiting for http.disconnect returns now
            else:
                self.phase = BODY
                if not ok:
                    await self._writable()
            return
        # http.response.pathsend
        await self._pathsend(message["path"])

    def _said(self) -> str:
        return {START: "no response", HEAD: "http.response.start",
                BODY: "part of the body", DONE: "the whole response"}[self.phase]

    def _write_head(self) -> None:
        """Status and headers onto the response (written with the first body bytes)."""
        res = self.res
        status = self.status
        head = _checked_head(self.headers)
        if head.lines:
            res.add_header_lines(head.lines)
        res.write_status(status)
        self.close = head.close
        # No body and no content-length for 1xx, 204 and 304 (RFC 9110 §6.4.1): end() knows.
        self.length = -1 if status in _NO_CONTENT or status < 200 else head.length

    async def _writable(self) -> None:
        """Wait until the client has read what is buffered (or has gone)."""
        res = self.res
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def ready(res: Any, offset: int) -> None:
            if not fut.done():
                fut.set_result(None)

        res.on_writable(ready)
        if not self.watching:
            self._watch()
        self.waiter = fut
        await fut
        res.on_writable(_ignore)

    async def _pathsend(self, path: str) -> None:
        """``http.response.pathsend``: the file as the body, zero-copy where the socket
        allows (the app's head already announced its length)."""
        import os

        res = self.res
        self._write_head()
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            size = os.fstat(fd).st_size
            length = self.length if self.length >= 0 else size
            self.length = length
            await res.send_fd(fd, 0, min(size, length), length)
        finally:
            os.close(fd)
        self.phase = DONE
        self._wake()

    # -- the app returned ---------------------------------------------------------------------

    def finished(self) -> None:
        """The app's call returned: make sure the exchange ends."""
        phase = self.phase
        res = self.res
        if phase is DONE or res.has_responded():
            return  # (or the connection answered for the app: a malformed body, a timeout)
        if phase is BODY:
            log.error("ASGI app returned in the middle of the response body for %s %s; "
                      "closing the connection", self.req.method, self.req.path)
            res.close()
            return
        log.error("ASGI app returned without %s for %s %s; answering 500",
                  "a response body" if phase is HEAD else "sending a response",
                  self.req.method, self.req.path)
        self._answer_500()

    def failed(self, exc: BaseException) -> None:
        """The app's call raised: 500 if nothing was written, else close (logged)."""
        res = self.res
        if res.aborted:
            if not isinstance(exc, (ClientDisconnected, asyncio.CancelledError)):
                log.error("ASGI app failed after the client went away", exc_info=exc)
            return
        if isinstance(exc, asyncio.CancelledError):
            res.close()  # cancelled at shutdown: no answer can be finished
            return
        req = self.req
        log.error("exception in ASGI app for %s %s", req.method, req.path, exc_info=exc)
        phase = self.phase
        if phase is DONE or res.has_responded():
            return  # the answer was complete and framed: the connection stays usable
        if phase is BODY:
            res.close()
            return
        self._answer_500()

    def _answer_500(self) -> None:
        self.phase = DONE
        self._wake()
        self.res.write_status(500).end("500 Internal Server Error\n")

    def continues(self) -> None:
        """The call suspended with the answer unfinished: tell the connection (a registered
        ``on_aborted`` is what it waits for) and hear of a client that leaves."""
        if not self.watching:
            self._watch()


def _ignore(res: Any, offset: int) -> None:
    """The on_writable handler once nobody waits any more."""


class Calls:
    """The app calls in flight, so that a shutdown lets them finish: frameworks keep working
    after the last byte was sent (Django closes the response and sends ``request_finished``
    in a thread), and the connection may be gone by then."""

    __slots__ = ("active", "waiter")

    def __init__(self) -> None:
        self.active = 0
        #: Set while wait() waits: done() wakes it once no call is left.
        self.waiter: asyncio.Future[None] | None = None

    def done(self) -> None:
        self.active -= 1
        if not self.active and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Until no call is in flight, or ``timeout`` seconds (then log how many remain)."""
        if not self.active:
            return
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self.waiter), timeout)
        except asyncio.TimeoutError:
            log.warning("shutdown: %d ASGI calls still running after %.1f s", self.active,
                        timeout)

