"""Serving a WSGI application (PEP 3333) from a bounded thread pool; the loop never blocks.

The app runs in one of ``threads`` worker threads. Everything that touches the connection —
status, headers, body — is handed back to the event loop with ``call_soon_threadsafe`` and
written there through the public ``Response`` API, inside a cork scope:

* A body the app returns as a list (Flask, Django) or whose iterator yields one piece goes out
  as the head and that piece in one ``transport.write``, with a ``content-length``.
* A longer iterable is streamed (``content-length`` from the app, else chunked): each piece is
  written on the loop, and the thread waits for the client while it reads slower
  (``on_writable``), so a slow client holds a thread, not the server's memory.
* ``wsgi.input`` is read lazily: nothing of the body is buffered until the app reads, then it
  arrives through ``res.on_data`` and the socket is paused while the app lags behind.

An app that raises before sending anything gets a logged 500; after the head went out, the
connection is closed (its answer cannot be completed).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes

from ..body import ClientDisconnected
from .http import Calls

__all__ = ["WSGIHandler", "WSGIInput"]

log = logging.getLogger("corkweb.error")

#: Request body bytes held for an app that reads slower than the client sends, above which
#: the socket is paused until the app has read half of them.
INPUT_HIGH_WATER = 256 * 1024
DEFAULT_THREADS = 40


class WSGIInput:
    """``environ["wsgi.input"]``: the request body, fetched from the loop on first read."""

    def __init__(self, res: Any, loop: asyncio.AbstractEventLoop, has_body: bool) -> None:
        self._res = res
        self._loop = loop
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = not has_body
        self._error: BaseException | None = None
        self._started = not has_body
        self._paused = False
        self._cond = threading.Condition()

    # -- loop side --------------------------------------------------------------------------

    def _start(self) -> None:
        res = self._res
        if res.has_responded():
            # The client left, or the connection answered for the app (a malformed body).
            self._fail(ClientDisconnected("the request body will not come"))
            return
        res.on_data(self._on_data)

    def _on_data(self, res: Any, chunk: bytes, is_end: bool) -> None:
        with self._cond:
            if chunk:
                self._chunks.append(chunk)
                self._buffered += len(chunk)
                if self._buffered > INPUT_HIGH_WATER and not self._paused and not is_end:
                    self._paused = True
                    res.pause()
            if is_end:
                self._eof = True
            self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if not self._eof:
                self._error = exc
            self._cond.notify_all()


    # -- thread side ------------------------------------------------------------------------

    def _fill(self, want: int) -> None:
        """Wait (in the app's thread) until ``want`` bytes are buffered or the body ended;
        ``want < 0``: until the end."""
        if not self._started:
            self._started = True
            self._loop.call_soon_threadsafe(self._start)
        with self._cond:
            while not self._eof and (want < 0 or self._buffered < want):
                if self._error is not None:
                    raise self._error
                if self._paused:
                    # The app asks for more than is held: it takes the memory on purpose.
                    self._paused = False
                    self._loop.call_soon_threadsafe(self._res.resume)
                self._cond.wait()

    def _take(self, size: int) -> bytes:
        """Up to ``size`` buffered bytes (all for ``size < 0``)."""
        with self._cond:
            chunks = self._chunks
            if size < 0 or size >= self._buffered:
                data = b"".join(chunks)
                chunks.clear()
            else:
                parts: list[bytes] = []
                left = size
                while left:
                    piece = chunks.popleft()
                    if len(piece) > left:
                        chunks.appendleft(piece[left:])
                        piece = piece[:left]
                    parts.append(piece)
                    left -= len(piece)
                data = b"".join(parts)
            self._buffered -= len(data)
            if self._paused and self._buffered < INPUT_HIGH_WATER // 2:
                self._paused = False
                self._loop.call_soon_threadsafe(self._res.resume)
            return data

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if size == 0:
            return b""
        self._fill(size)
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        want = 1
        while True:
            self._fill(want)
            with self._cond:
                joined = b"".join(self._chunks)
                if len(self._chunks) > 1:
                    self._chunks.clear()
                    self._chunks.append(joined)
                end = joined.find(b"\n")
                eof = self._eof
            if end >= 0:
                take = end + 1
            elif eof:
                take = len(joined)
            else:
                take = -1
            if size >= 0 and (take < 0 or take > size) and len(joined) >= size:
                take = size
            if take >= 0:
                return self._take(take)
            want = len(joined) + 1

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self) -> WSGIInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _Exchange:
    """One request's answer, built in the app's thread and written on the loop."""

    __slots__ = ("res", "loop", "input", "status", "headers", "length", "started", "sent",
                 "waiting")

    def __init__(self, res: Any, loop: asyncio.AbstractEventLoop, body: WSGIInput) -> None:
        self.res = res
        self.loop = loop
        self.input = body
        #: The thread waits on this while the client reads slower than the app writes.
        self.waiting: Future[None] | None = None
        res.on_aborted(self._aborted)
        # The connection may answer for the app (a malformed body: 400; a body timeout: 408):
        # a thread still reading wsgi.input must not wait for bytes that will not come.
        res.on_complete(self._completed)
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.length = -1
        self.started = False  # the head was handed to the loop
        self.sent = False  # the loop wrote the head

    def _aborted(self, res: Any) -> None:
        """The client left: wake the app's thread wherever it waits for the connection."""
        gone = ClientDisconnected("the client closed the connection")
        self.input._fail(gone)
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_exception(gone)

    def _completed(self, res: Any) -> None:
        if not self.sent:
            self.input._fail(ClientDisconnected("the request was answered by the server: "
                                                "its body was refused"))

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            if self.started:
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise RuntimeError("start_response() called twice without exc_info")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write`` callable of ``start_response``: an unbuffered piece."""
        if data:
            self.send(data, more=True)

    # -- to the loop ------------------------------------------------------------------------

    def send(self, data: bytes, more: bool) -> None:
        """Hand a piece to the loop (the head with the first); waits while the client lags."""
        if self.status is None:
            raise RuntimeError("the WSGI app sent a body before calling start_response()")
        first = not self.started
        self.started = True
        if not more:
            self.loop.call_soon_threadsafe(self._write, data, first, False, None)
            return
        done: Future[None] = Future()
        self.loop.call_soon_threadsafe(self._write, data, first, True, done)
        done.result()  # raises ClientDisconnected if the client left

    def _write(self, data: bytes, first: bool, more: bool, done: Future[None] | None) -> None:
        res = self.res
        if res.has_responded() and not self.sent:
            # Gone, or answered by the connection meanwhile (a malformed body): nothing to add.
            if done is not None:
                done.set_exception(ClientDisconnected("the exchange is over"))
            return
        if res.aborted:
            if done is not None:
                done.set_exception(ClientDisconnected("the client closed the connection"))
            return
        try:
            res.cork(lambda res: self._write_corked(data, first, more, done))
        except Exception as exc:  # a header the response refused (CR/LF): the app's fault
            if done is not None and not done.done():
                done.set_exception(exc)
            else:
                raise

    def _write_corked(self, data: bytes, first: bool, more: bool,
                      done: Future[None] | None) -> None:
        res = self.res
        if first:
            self._write_head()
        if self.length >= 0:
            ok, _ = res.try_end(data, self.length)
            if not more and not res.has_responded():
                log.error("WSGI app sent %d of the %d bytes of its content-length; closing "
                          "the connection", res.get_write_offset(), self.length)
                res.close()
        elif more:
            res.write(data)
            ok = res.is_writable()
        else:
            res.end(data)
            ok = True
        if done is None:
            return
        if ok:
            done.set_result(None)
            return

        def writable(res: Any, offset: int) -> None:
            self.waiting = None
            if not done.done():
                done.set_result(None)

        self.waiting = done
        res.on_writable(writable)

    def _write_head(self) -> None:
        res = self.res
        assert self.status is not None
        res.write_status(self.status)
        self.sent = True
        for name, value in self.headers:
            lname = name.lower()
            if lname == "content-length":
                self.length = int(value)
            elif lname in ("transfer-encoding", "connection", "date"):
                continue  # corkweb frames the body and writes the date itself
            else:
                res.write_header(name, value)
        code = res.status
        if code in (204, 304) or code < 200:
            self.length = -1


class WSGIHandler:
    """The corkweb handler that serves a WSGI application on a thread pool."""

    def __init__(self, app: Any, *, root_path: str = "", mounted: bool = False,
                 proxies: Any = None, proxy_protocol: bool = False,
                 threads: int | None = None) -> None:
        self.app = app
        self.root_path = root_path.rstrip("/")
        self.mounted = mounted
        #: Whether the client can come from elsewhere than the socket (see ASGIHandler).
        self.forwarded = bool(proxies) or proxy_protocol
        self.threads = threads or DEFAULT_THREADS
        self.pool: ThreadPoolExecutor | None = None
        self.calls = Calls()
        self.multiprocess = False

    def environ(self, res: Any, req: Any, body: WSGIInput) -> dict[str, Any]:
        peer, local, tls = res.get_socket_info()
        path = req.path
        script = self.root_path
        if self.mounted and script:
            path = path[len(script):]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": req.method,
            "SCRIPT_NAME": script,
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1") if "%" in path else path,
            "QUERY_STRING": req.query,
            "SERVER_PROTOCOL": "HTTP/" + req.version,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": res.get_scheme() if self.forwarded else (
                "https" if tls else "http"),
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        if isinstance(local, tuple):
            environ["SERVER_NAME"], environ["SERVER_PORT"] = local[0], str(local[1])
        else:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", "0"
        remote = res.get_remote_address() if self.forwarded else (
            peer[0] if isinstance(peer, tuple) else None)
        if remote is not None:
            environ["REMOTE_ADDR"] = remote
            if isinstance(peer, tuple) and remote == peer[0]:
                environ["REMOTE_PORT"] = str(peer[1])
        for raw_name, raw_value in req.headers:
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            if name == "content-type":
                key = "CONTENT_TYPE"
            elif name == "content-length":
                key = "CONTENT_LENGTH"
            else:
                key = "HTTP_" + name.upper().replace("-", "_")
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
            else:
                environ[key] = value
        return environ

    def __call__(self, res: Any, req: Any) -> Any:
        loop = asyncio.get_running_loop()
        body = WSGIInput(res, loop, bool(req.content_length or req.chunked))
        # Made now, not in the task: its hooks must hear of an answer the connection gives
        # before the task runs (a malformed body in the same read).
        exchange = _Exchange(res, loop, body)
        return self._run(res, loop, self.environ(res, req, body), exchange)

    async def _run(self, res: Any, loop: asyncio.AbstractEventLoop,
                   environ: dict[str, Any], exchange: _Exchange) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="corkweb-wsgi")
        self.calls.active += 1
        try:
            await loop.run_in_executor(self.pool, self._call, environ, exchange)
        except ClientDisconnected:
            return
        except Exception:
            if not exchange.sent:
                raise  # nothing was written: the server logs it and answers 500
            log.exception("WSGI app failed after sending its head; closing the connection")
            res.close()
            return
        finally:
            self.calls.done()
        if not exchange.started and not res.has_responded():
            raise RuntimeError("the WSGI app returned without calling start_response()")

    def _call(self, environ: dict[str, Any], exchange: _Exchange) -> None:
        """In a worker thread: call the app and hand its answer to the loop."""
        result: Iterable[bytes] = self.app(environ, exchange.start_response)
        try:
            if isinstance(result, (list, tuple)):
                exchange.send(b"".join(result), more=False)
                return
            held: bytes | None = None
            for piece in result:
                if not piece:
                    continue
                if held is not None:
                    exchange.send(held, more=True)
                held = piece
            if exchange.status is not None:
                exchange.send(held or b"", more=False)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    async def close(self) -> None:
        """At shutdown, once the calls in flight are done: let the threads go."""
        if self.pool is not None:
            self.pool.shutdown(wait=False)
