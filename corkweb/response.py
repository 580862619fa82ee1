"""``Response``: how a handler answers (``res`` in ``handler(res, req)``), and reads the body.

Status, headers and cookies may be set in any order; the head is serialised once, when the
first body byte or the end is written (DESIGN.md §1 rule 6). Everything a response writes goes
to the connection's corker, so inside a handler — sync, or any step of an async one — the whole
response leaves in one ``transport.write``.

A response is in one of four states, and moves only forward::

    PENDING --write/try_end--> STREAMING --end/try_end--> DONE
    PENDING ----------------end---------------------------> DONE
    any ----------------client goes away---------------> (aborted, writes are dropped)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .body import BodyReader, ClientDisconnected
from .errors import BadRequest
from .proxy import client_address, client_scheme
from .redirects import check_location, unsafe_reason
from .streaming import DONE, PENDING, STREAMING, StreamWriter
from .wire.cookies import cookie_line
from .wire.writer import CONTINUE, header_line, status_line

if TYPE_CHECKING:
    from .request import Request

__all__ = ["Response", "ResponseOptions", "ClientDisconnected", "PENDING", "STREAMING", "DONE"]

log = logging.getLogger("corkweb.error")

_OK = status_line(200)
_TEXT = b"content-type: text/plain; charset=utf-8\r\n"
_HTML = b"content-type: text/html; charset=utf-8\r\n"
_JSON = b"content-type: application/json\r\n"
_CLOSE = b"connection: close\r\n"
_KEEP_ALIVE = b"connection: keep-alive\r\n"
# Headers whose framing meaning corkweb owns (RFC 9112 §6): user values are not copied.
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection"))


class ResponseOptions:
    """App-wide settings a response needs, built once when the app starts (falcon's idea)."""

    __slots__ = ("json_dumps", "json_loads", "render", "render_async", "render_string",
                 "debug", "proxies")

    def __init__(
        self,
        json_dumps: Callable[[Any], bytes] | None = None,
        json_loads: Callable[[bytes], Any] | None = None,
        render: Callable[[str, dict[str, Any]], str] | None = None,
        render_async: Callable[[str, dict[str, Any]], Any] | None = None,
        debug: bool = False,
        render_string: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        import orjson

        self.json_dumps = json_dumps or orjson.dumps
        self.json_loads = json_loads or orjson.loads
        # Templates (templating.make_renderers): ``render_async`` is set when the engine is
        # async, and then ``render_string`` returns an awaitable too.
        self.render = render
        self.render_async = render_async
        self.render_string = render_string
        self.debug = debug
        # corkweb.proxy.TrustedProxies (set by the App): whose X-Forwarded-* to believe.
        self.proxies: Any = None


class Response(StreamWriter, BodyReader):
    """The answer to one request, bound to its connection."""

    # PERF: no __slots__ here. Most fields of a response are used only by streaming, body
    # reading or error paths; as class attributes they cost nothing until set, and __init__
    # sets only what every response needs (saves 0.3 µs per request over setting all 24).
    _on_aborted: Callable[..., Any] | None = None
    _on_writable: Callable[..., Any] | None = None
    _task: asyncio.Task[Any] | None = None
    _upgrade: Any = None
    _erroring = False
    _before_head: list[Callable[[Response], Any]] | None = None
    _on_finish: list[Callable[[Response], Any]] | None = None
    #: True once the client went away before the response was complete.
    aborted = False
    #: The middleware that stopped its chain without answering (named in the 500 error).
    stopped_by: str | None = None

    def __init__(self, conn: Any, req: Request) -> None:
        self._conn = conn
        self._req = req
        self._state = PENDING
        self._status = _OK
        self._code = 200
        self._headers: list[bytes] | None = None
        self._ct = False
        self._close = False
        self._body_done = not (req.content_length or req.chunked)

    def __repr__(self) -> str:
        state = ("pending", "streaming", "done")[self._state]
        return f"<Response {self._code} {state} for {self._req.method} {self._req.url}>"

    # -- status and headers ---------------------------------------------------------------

    def write_status(self, status: int | str | bytes) -> Response:
        """Set the status: ``404``, ``"404 Not Found"`` or ``"299 Custom Reason"``."""
        if self._state != PENDING:
            if self.aborted:
                return self
            raise RuntimeError("write_status() after the response head was sent")
        line = status_line(status)
        self._status = line
        self._code = int(line[9:12])
        return self

    def write_header(self, name: str, value: str | bytes | int) -> Response:
        """Add a header line (repeat the call for repeated fields such as ``link``).

        ``content-type`` replaces the default one. ``content-length``, ``transfer-encoding``
        and ``connection`` are corkweb's to write (a wrong one would desync the connection):
        they are refused with ``ValueError``.
        """
        if self._state != PENDING:
            if self.aborted:
                return self
            raise RuntimeError("write_header() after the response head was sent")
        lname = name.lower() if isinstance(name, str) else name.decode("latin-1").lower()
        if lname in _FRAMING:
            raise ValueError(f"{name!r} is set by corkweb from the body and cannot be written")
        if lname == "content-type":
            self._ct = True
        line = header_line(name, value)
        if self._headers is None:
            self._headers = [line]
        else:
            self._headers.append(line)
        return self

    def write_headers(self, headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Response:
        """``write_header`` for each item of a mapping or an iterable of pairs."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            self.write_header(name, value)
        return self

    def set_cookie(
        self, name: str, value: str, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Response:
        """Add a ``set-cookie`` header.

        Options as keyword arguments or socketify's dict: ``max_age`` (or ``"max-age"``),
        ``expires`` (datetime or timestamp), ``path`` (default ``"/"``), ``domain``,
        ``secure``, ``httponly``, ``samesite`` (``"Strict"``, ``"Lax"``, ``"None"``),
        ``partitioned``.
        """
        merged: dict[str, Any] = {}
        for key, val in {**(options or {}), **kwargs}.items():
            merged[key.lower().replace("-", "_")] = val
        line = cookie_line(name, value, **merged)
        if self._state != PENDING:
            if self.aborted:
                return self
            raise RuntimeError("set_cookie() after the response head was sent")
        if self._headers is None:
            self._headers = [line]
        else:
            self._headers.append(line)
        return self

    def _clear_head(self) -> None:
        """Forget status, headers and cookies set so far (an error answer replaces them)."""
        if self._state != PENDING:
            raise RuntimeError("the response head was already sent")
        self._status = _OK
        self._code = 200
        self._headers = None
        self._ct = False

    def write_header_lines(self, lines: Iterable[bytes]) -> Response:
        """Add header lines already serialised by ``corkweb.wire.writer.header_line`` (checked
        there, once): for middleware that adds the same headers to many responses.

        PERF: ~0.2 µs for five lines against ~1 µs per ``write_header`` call, whose checks
        run on every call."""
        if self._state != PENDING:
            if self.aborted:
                return self
            raise RuntimeError("write_header_lines() after the response head was sent")
        if self._headers is None:
            self._headers = list(lines)
        else:
            self._headers += lines
        return self

    def before_head(self, callback: Callable[[Response], Any]) -> Response:
        """Call ``callback(res)`` just before the head is serialised (it may still add
        headers or change the status): for middleware that decorates every response."""
        if self._state != PENDING:
            raise RuntimeError("before_head() after the response head was sent")
        if self._before_head is None:
            self._before_head = [callback]
        else:
            self._before_head.append(callback)
        return self

    def on_finish(self, callback: Callable[[Response], Any]) -> Response:
        """Call ``callback(res)`` once the response is complete (all of it is queued for the
        client): for logging and timing. Not called for an aborted response."""
        if self._on_finish is None:
            self._on_finish = [callback]
        else:
            self._on_finish.append(callback)
        return self

    _background: Any = None

    def background(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Response:
        """Run ``fn(*args, **kwargs)`` (sync or async) once the response has been sent; see
        ``corkweb/background.py`` for order, errors and shutdown."""
        from .background import schedule

        self._background = schedule(self, self._req, self._background, fn, args, kwargs)
        return self

    @property
    def status(self) -> int:
        """The status code set so far (200 unless changed)."""
        return self._code

    def _run_before_head(self) -> None:
        hooks, self._before_head = self._before_head, None
        for hook in hooks or ():
            hook(self)

    def _finished(self) -> None:
        hooks, self._on_finish = self._on_finish, None
        for hook in hooks or ():
            self._conn.call_user(hook, self)

    def _head(self, framing: bytes, default_ct: bytes | None) -> bytes:
        """Serialise the head once; ``framing`` is the content-length or chunked line."""
        if self._before_head is not None:
            self._run_before_head()
        req = self._req
        parts = [self._status, self._conn.state.date]
        if self._headers is not None:
            parts += self._headers
        if default_ct is not None and not self._ct:
            parts.append(default_ct)
        conn = self._conn
        if self._close or not req.keep_alive or conn.draining:
            self._close = True
            parts.append(_CLOSE)
        elif req.version == "1.0":
            parts.append(_KEEP_ALIVE)
        parts.append(framing)
        return b"".join(parts)

    # -- ending ---------------------------------------------------------------------------

    def _encode(self, message: Any) -> tuple[bytes, bytes | None]:
        cls = message.__class__
        if cls is str:
            return message.encode(), _TEXT
        if cls is bytes:
            return message, None
        if message is None:
            return b"", None
        if isinstance(message, (bytes, bytearray, memoryview)):
            return bytes(message), None
        if isinstance(message, str):
            return message.encode(), _TEXT
        return self._conn.options.json_dumps(message), _JSON

    def end(self, message: Any = b"", end_connection: bool = False) -> Response:
        """Send ``message`` as the whole body (or the last part after ``write``) and finish.

        ``str`` is sent as UTF-8 ``text/plain``; ``bytes`` as is; ``None`` as an empty body;
        anything else (dict, list, dataclass, …) as JSON through orjson. Ending an aborted
        response does nothing; ending a response twice raises ``RuntimeError``.
        """
        if self._state == DONE:
            if self.aborted:
                return self
            raise RuntimeError("the response was already ended")
        cls = message.__class__
        if cls is str:
            body, ctype = message.encode(), _TEXT
        elif cls is bytes:
            body, ctype = message, None
        else:
            body, ctype = self._encode(message)
        if end_connection:
            self._close = True
        if self._state == STREAMING:
            self._end_stream(body)
            return self
        if self._before_head is not None:
            self._run_before_head()
            if self._body_filter is not None:  # compression; set only with a hook (no cost)
                body = self._body_filter(self, body, ctype)
        code = self._code
        req = self._req
        conn = self._conn
        if code < 200 or code == 204 or code == 304:
            # No body and no Content-Length for these (RFC 9110 §6.4.1, §8.6).
            data = self._head(b"\r\n", None)
        elif (self._headers is None and not self._close and req.keep_alive
              and req.version == "1.1" and not conn.draining):
            # PERF: the common response — no extra headers, keep-alive — in one formatting
            # operation instead of a parts list (1.2k instructions less per response).
            data = b"%b%b%bcontent-length: %d\r\n\r\n%b" % (
                self._status, conn.state.date, ctype or b"", len(body),
                body if req.method != "HEAD" else b"",
            )
        else:
            data = self._head(b"content-length: %d\r\n\r\n" % len(body), ctype)
            if body and req.method != "HEAD":
                data += body
        self._state = DONE
        conn.write(data)
        conn.response_done(self)
        if self._on_finish is not None:
            self._finished()
        return self

    def end_without_body(self, end_connection: bool = False) -> Response:
        """End with an empty body (socketify name)."""
        return self.end(b"", end_connection)

    def cork(self, callback: Callable[[Response], Any]) -> Response:
        """Run ``callback(res)`` in a cork scope: whatever it writes leaves in one write.

        Callbacks into your code are corked already; use this from foreign callbacks (a timer,
        a database client) to pack several writes. The callback must be synchronous.
        """
        if inspect.iscoroutinefunction(callback):
            raise TypeError("res.cork() takes a synchronous callback; await inside the handler "
                            "instead (every step of an async handler is corked)")
        if self.aborted:
            return self
        conn = self._conn
        prev = conn.cork()
        try:
            result = callback(self)
        finally:
            conn.uncork(prev)
        if inspect.iscoroutine(result):
            result.close()
            raise TypeError("res.cork() callback returned a coroutine; it must be synchronous")
        return self

    def cork_end(self, message: Any = b"", end_connection: bool = False) -> Response:
        """``end`` inside a cork scope (one write even from a foreign callback)."""
        conn = self._conn
        prev = conn.cork()
        try:
            return self.end(message, end_connection)
        finally:
            conn.uncork(prev)

    def send(
        self,
        message: Any = b"",
        content_type: str | bytes | None = None,
        status: int | str | bytes | None = None,
        headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        end_connection: bool = False,
    ) -> Response:
        """Status, content type, headers and body in one corked call."""
        conn = self._conn
        prev = conn.cork()
        try:
            if status is not None:
                self.write_status(status)
            if content_type is not None:
                self.write_header("content-type", content_type)
            if headers:
                self.write_headers(headers)
            return self.end(message, end_connection)
        finally:
            conn.uncork(prev)

    cork_send = send

    def redirect(self, location: str, status: int = 302, *, safe: bool = False) -> Response:
        """Answer ``status`` (302 by default) with a ``location`` header, corked.

        A location holding any control character raises ``ValueError``. ``safe=True`` is for
        a target taken from the request: only a path on this site is accepted
        (``corkweb.same_site_path``), anything else answers 400 and redirects nowhere.
        """
        if safe:
            reason = unsafe_reason(location)
            if reason is not None:
                raise BadRequest(f"refusing to redirect to {location!r}: {reason}")
        check_location(location)
        return self.send(b"", status=status, headers=(("location", location),))

    # -- templates (engines in templating.py) ---------------------------------------------

    def render(self, name: str, /, status: int | str | None = None,
               headers: Mapping[str, Any] | None = None, **context: Any) -> Any:
        """Render template ``name`` with ``context`` and answer it as ``text/html; charset=utf-8``
        through ``cork_end`` (one write); ``status`` is 200 unless given or set before.

        Templates also see ``request``, ``url_for`` and ``static_url``. A synchronous engine
        answers at once and returns ``res`` (which may be awaited: ``await res.render(...)``
        works with any engine); an async Jinja2 environment returns an awaitable.
        """
        return self._render(self._conn.options.render, name, status, headers, context)

    def render_string(self, source: str, /, status: int | str | None = None,
                      headers: Mapping[str, Any] | None = None, **context: Any) -> Any:
        """``render`` for template text (autoescaped; compiled once, then cached)."""
        return self._render(self._conn.options.render_string, source, status, headers, context)

    def _render(self, render: Callable[[str, dict[str, Any]], Any] | None, what: str,
                status: int | str | None, headers: Mapping[str, Any] | None,
                context: dict[str, Any]) -> Any:
        if render is None:
            raise RuntimeError("no template engine: no templates folder was found; create the "
                               "App with templates=<folder> or call app.template(engine)")
        if "request" not in context:
            context["request"] = self._req
        if self._conn.options.render_async is not None:
            return self._render_async(render(what, context), status, headers)
        return self._send_html(render(what, context), status, headers)

    def __await__(self) -> Generator[Any, None, Response]:
        return self  # ``await res.render(...)`` with a synchronous engine: already answered
        yield  # pragma: no cover

    async def _render_async(self, pending: Any, status: int | str | None,
                            headers: Mapping[str, Any] | None) -> Response:
        return self._send_html(await pending, status, headers)

    def _send_html(self, html: str, status: int | str | None,
                   headers: Mapping[str, Any] | None) -> Response:
        conn = self._conn
        prev = conn.cork()
        try:
            if status is not None:
                self.write_status(status)
            if headers:
                self.write_headers(headers)
            if not self._ct:
                self._ct = True
                if self._headers is None:
                    self._headers = [_HTML]
                else:
                    self._headers.append(_HTML)
            return self.end(html)
        finally:
            conn.uncork(prev)

    def write_continue(self) -> Response:
        """Send ``100 Continue`` to a client that asked for it (sent automatically on read)."""
        if self._req.expect_continue and not self._continue_sent and self._state == PENDING:
            self._continue_sent = True
            self._conn.write(CONTINUE)
        return self

    def has_responded(self) -> bool:
        """True once the response was ended (or the client went away)."""
        return self._state == DONE

    # -- connection-level -----------------------------------------------------------------

    def on_aborted(self, handler: Callable[[Response], Any]) -> Response:
        """Call ``handler(res)`` if the client goes away before the response is complete."""
        self._on_aborted = handler
        return self

    def _abort(self) -> None:
        """The connection was lost before this response was complete."""
        self.aborted = True
        was_done = self._state == DONE
        self._state = DONE
        self._fail_body(ClientDisconnected("the client closed the connection"))
        if not was_done and self._on_aborted is not None:
            self._conn.call_user(self._on_aborted, self)

    def _has_continuation(self) -> bool:
        """Whether something registered will finish this response later."""
        return (
            self._state == STREAMING or self._task is not None or self._waiters is not None
            or self._on_data is not None or self._on_aborted is not None
            or self._on_writable is not None or self._upgrade is not None
        )

    def close(self) -> Response:
        """Close the connection at once (the response, if unfinished, is abandoned)."""
        self._conn.abort_transport()
        return self

    def pause(self) -> Response:
        """Stop reading from the client (the body stops arriving) until ``resume``."""
        self._conn.pause_reading()
        return self

    def resume(self) -> Response:
        """Undo ``pause``."""
        self._conn.resume_reading()
        return self

    def get_remote_address(self) -> str | None:
        """The client's IP (``None`` for a UNIX socket); behind a proxy, see docs/scaling.md."""
        return client_address(self._conn, self._req)

    def from_trusted_proxy(self) -> bool:
        """Whether the connection comes from one of the app's trusted proxies (whose
        forwarding headers, such as ``X-Request-ID``, may be believed)."""
        proxies = self._conn.options.proxies
        return proxies is not None and bool(proxies.is_trusted(self._conn.remote_address()))

    def get_scheme(self) -> str:
        """``"https"`` or ``"http"`` as the client used it (behind a proxy: docs/scaling.md)."""
        return client_scheme(self._conn, self._req)

    def run_async(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` as part of this response: corked steps, errors answered 500."""
        return self._conn.run_async(coro, self)

    def is_writable(self) -> bool:
        """False while the client reads slower than we write (the ``ok`` of ``try_end``):
        wait for ``on_writable`` before writing more. For hosted ASGI/WSGI apps."""
        return bool(self._conn.writable)

    def get_socket_addresses(self) -> tuple[Any, Any]:
        """``(peer, local)`` addresses of the connection as the socket reports them
        (``(host, port)`` tuples for TCP; for the client behind a proxy see
        ``get_remote_address``). For hosted ASGI/WSGI apps (``scope["client"]``)."""
        transport = self._conn.transport
        return transport.get_extra_info("peername"), transport.get_extra_info("sockname")

    def get_buffered_amount(self) -> int:
        """Bytes written but not yet sent to the client."""
        return int(self._conn.buffered_amount())

    # -- WebSocket upgrade ----------------------------------------------------------------

    def upgrade(self, sec_web_socket_key: str | bytes,
                sec_web_socket_protocol: str | bytes | None = None,
                sec_web_socket_extensions: str | bytes | None = None,
                socket_context: Any = None, user_data: Any = None) -> Response:
        """Accept a WebSocket upgrade (socketify's ``res.upgrade``), inside a ``ws`` route.

        The subprotocol is answered only if the client offered it; ``user_data`` is what
        ``ws.get_user_data()`` returns. The connection switches to WebSocket once the
        handler returns (or at once, for an async ``upgrade`` behaviour).
        """
        if self._state != PENDING:
            if self.aborted:
                return self
            raise RuntimeError("upgrade() after the response was started")
        context = socket_context if socket_context is not None else getattr(
            self, "_ws_context", None)
        if context is None:
            raise RuntimeError("res.upgrade() outside a WebSocket route (see app.ws)")
        head, info = context.accept(self, sec_web_socket_key, sec_web_socket_protocol,
                                    sec_web_socket_extensions, user_data)
        self._close = False  # the connection stays open, as WebSocket
        self._conn.write(head)
        self._state = DONE
        self._upgrade = info
        self._conn.upgrade_accepted(self)
        return self

    # -- files, forms, body filters (corkweb/static.py, multipart.py) -----------------------

    _body_filter: Callable[[Response, bytes, bytes | None], bytes] | None = None

    def filter_body(self, fn: Callable[[Response, bytes, bytes | None], bytes]) -> Response:
        """``fn(res, body, default_ctype) -> body`` transforms the body given to ``end`` just
        before the head is built (compression); streamed bodies are not filtered."""
        if self._state != PENDING:
            raise RuntimeError("filter_body() after the response head was sent")
        self._body_filter = fn
        if self._before_head is None:
            self._before_head = []  # end() looks for a filter only when hooks exist
        return self

    async def sendfile(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Answer with a file (304, Range, HEAD, zero-copy): ``corkweb.static.send_file``'s
        options. ``path`` is trusted: never build it from request input unchecked."""
        from .static import send_file

        options.setdefault("precompressed", False)
        pending = send_file(self, self._req, os.fspath(path), **options)
        if pending is not None:
            await pending

    async def send_fd(self, fd: int, offset: int, count: int, total_size: int) -> None:
        """Send ``count`` bytes of the open file ``fd`` from ``offset`` as (the rest of) a body
        of ``total_size`` bytes, zero-copy on a plain socket (``CorkedProtocol.sendfile``).
        The head goes first if it has not; raises ``ClientDisconnected`` if the client
        leaves. For hosted ASGI apps (``http.response.pathsend``); ``fd`` stays open."""
        if self._state == PENDING:
            self.try_end(b"", total_size)
        if self._state == DONE:
            return  # HEAD, or an empty file: the head was the whole answer
        try:
            await self._conn.sendfile(fd, offset, count)
        except ConnectionResetError as exc:
            raise ClientDisconnected(str(exc)) from exc
        self._offset += count
        self.try_end(b"", total_size)

    async def get_form(self, **limits: Any) -> Any:
        """A ``multipart/form-data`` body as ``FormData``: ``corkweb.multipart.get_form``."""
        from .multipart import get_form

        return await get_form(self, **limits)

    # The async handler's driver (CorkedStep) reports here, inside its last cork scope.
    def step_done(self, exc: BaseException | None) -> None:
        """The server's interface: the handler's coroutine ended (``exc`` if it failed)."""
        self._conn.handler_finished(self, exc)
