"""``Response``: how a handler answers (``res`` in ``handler(res, req)``), and reads the body.

The exchange itself — phase, head, body framing, body intake, abort — is
:class:`corkweb.server.exchange.Exchange`, which the connection talks to. ``Response`` adds
socketify's surface on top: cookies, ``send``/``cork_send``/``cork_end``, ``redirect``,
templates, typed body readers (text, JSON, forms, multipart), files, the WebSocket upgrade and
the connection-level calls. Everything a response writes goes to the connection's corker, so
inside a handler — sync, or any step of an async one — the whole response leaves in one
``transport.write``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

from .body import BodyReaders
from .errors import BadRequest, ClientDisconnected, HTTPError
from .proxy import client_address, client_scheme, packed_address
from .redirects import check_location, unsafe_reason
from .server.exchange import (
    ABORTED,
    DONE,
    PENDING,
    STREAMING,
    Exchange,
    ExchangeOptions,
    Headers,
    Phase,
    TypedBody,
)
from .wire.cookies import cookie_line
from .wire.headers import FRAMING
from .wire.writer import LENGTH_LINES, STATUS_LINES, header_lines, length_line, status_line

__all__ = ["Response", "ResponseOptions", "ClientDisconnected", "Headers", "Phase",
           "PENDING", "STREAMING", "DONE", "ABORTED"]

log = logging.getLogger("corkweb.error")

_FRAMING_BYTES = frozenset(name.encode() for name in FRAMING)
_LENGTHS = len(LENGTH_LINES)
# PERF: bound once. Python 3.11 compiles ``NAME.get(...)`` of an imported name as an attribute
# read plus a call (it takes the name for a module), making a bound method every time: ~300
# instructions per hosted answer (callgrind).
_status_line_of = STATUS_LINES.get

_HTML = b"content-type: text/html; charset=utf-8\r\n"


class ResponseOptions(ExchangeOptions):
    """App-wide settings a response needs, built once when the app starts (falcon's idea):
    the exchange's (JSON, debug, trusted proxies) and the template renderers."""

    __slots__ = ("render", "render_async", "render_string", "app")

    def __init__(
        self,
        json_dumps: Callable[[Any], bytes] | None = None,
        json_loads: Callable[[bytes], Any] | None = None,
        render: Callable[[str, dict[str, Any]], str] | None = None,
        render_async: Callable[[str, dict[str, Any]], Any] | None = None,
        debug: bool = False,
        render_string: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__(json_dumps, json_loads, debug)
        # Templates (templating.make_renderers): ``render_async`` is set when the engine is
        # async, and then ``render_string`` returns an awaitable too.
        self.render = render
        self.render_async = render_async
        self.render_string = render_string
        self.app: Any = None  # the App, for socketify's ``res.app``


class Response(Exchange, BodyReaders):
    """The answer to one request, bound to its connection (socketify's ``res``)."""

    #: The WebSocket route whose handshake this response may accept (``res.upgrade``).
    upgrade_context: Any = None
    #: That route's validated handshake, when the route checked it already.
    upgrade_handshake: Any = None

    # -- status and headers ---------------------------------------------------------------

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
        return self.add_header_lines((line,))

    _background: Any = None

    def background(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Response:
        """Run ``fn(*args, **kwargs)`` (sync or async) once the response has been sent; see
        ``corkweb/background.py`` for order, errors and shutdown."""
        from .background import schedule

        self._background = schedule(self, self.request, self._background, fn, args, kwargs)
        return self

    # -- ending ---------------------------------------------------------------------------

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
        if self.phase is ABORTED:
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
            context["request"] = self.request
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
            return self.end(TypedBody(html.encode(), _HTML))
        finally:
            conn.uncork(prev)

    # -- connection-level -----------------------------------------------------------------

    def on_writable(self, handler: Callable[[Any, int], Any]) -> Response:
        """Call ``handler(res, offset)`` when the client has read what was buffered."""
        self.writable_handler = handler
        self.let_go_when_done()
        return self

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
        return client_address(self._conn, self.request)

    def from_trusted_proxy(self) -> bool:
        """Whether the connection comes from one of the app's trusted proxies (whose
        forwarding headers, such as ``X-Request-ID``, may be believed)."""
        proxies = self._conn.options.proxies
        return proxies is not None and bool(proxies.is_trusted(self._conn.remote_address()))

    def get_scheme(self) -> str:
        """``"https"`` or ``"http"`` as the client used it (behind a proxy: docs/scaling.md)."""
        return client_scheme(self._conn, self.request)

    #: ``run_async`` coroutines of this response still running (they keep it open).
    async_pending = 0

    def has_continuation(self) -> bool:
        """Whether something registered will finish this response later."""
        return self.async_pending > 0 or super().has_continuation()

    def run_async(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` as part of this response: corked steps, errors answered 500. The
        response stays open until ``coro`` answers, so a sync handler may hand over to it;
        if it finishes without answering, the request is answered 500 and logged."""
        self.async_pending += 1
        return self._conn.run_async(self._answered_by(coro), self)

    async def _answered_by(self, coro: Any) -> Any:
        """``coro`` (a ``run_async`` one), then: was the response answered, or is something
        still to answer it? If not, that is the handler's bug: 500."""
        try:
            result = await coro
        finally:
            self.async_pending -= 1
        if (not self.async_pending and self.task is None and self.phase is PENDING
                and not self.has_continuation()):
            req = self.request
            log.error("%s %s: the run_async coroutine finished without responding; answering "
                      "500", req.method, req.path)
            raise HTTPError(500, "the handler did not respond")
        return result

    # -- socketify's names (docs/porting-from-socketify.md) ------------------------------

    @property
    def app(self) -> Any:
        """The App this response belongs to (``res.app.loop``, ``res.app.trigger_error``)."""
        return self._conn.options.app

    def grab_aborted_handler(self) -> Response:
        """socketify needs this before an ``await`` in a sync handler; corkweb always learns
        that the client went away (``res.aborted``, ``on_aborted``), so it does nothing."""
        return self

    def get_proxied_remote_address(self) -> str | None:
        """The client address a PROXY protocol header reported (``App(proxy_protocol=True)``),
        or ``None`` when the connection had none."""
        proxied = getattr(self._conn, "proxied_address", None)
        return proxied() if proxied is not None else None

    _chunk_waiter: tuple[asyncio.Future[tuple[bool, bool]], bool] | None = None
    _chunk_watched = False

    def send_chunk(self, buffer: Any, total_size: int) -> asyncio.Future[tuple[bool, bool]]:
        """``ok, done = await res.send_chunk(buffer, total_size)``: ``try_end`` that waits
        while the client reads slower than we send (socketify's streaming helper).

        ``ok`` is False only when the client went away (then ``done`` is True too)."""
        fut: asyncio.Future[tuple[bool, bool]] = self.loop.create_future()
        if self.aborted:
            fut.set_result((False, True))
            return fut
        ok, done = self.try_end(buffer, total_size)
        if ok or done or self.aborted:
            # A finished response is no longer asked for writability: report it as sent.
            fut.set_result((not self.aborted, done or self.aborted))
            return fut
        # The whole buffer is queued; wait until the client has read it (or leaves).
        if not self._chunk_watched:
            self._chunk_watched = True
            self.on_complete(Response._chunk_settled)
        self._chunk_waiter = (fut, done)
        self.writable_handler = Response._chunk_settled_writable
        return fut

    def _chunk_settled(self) -> None:
        """``send_chunk`` waits: the client read what was queued, or went away."""
        waiter, self._chunk_waiter = self._chunk_waiter, None
        if waiter is not None and not waiter[0].done():
            waiter[0].set_result((False, True) if self.aborted else (True, waiter[1]))

    def _chunk_settled_writable(self, offset: int) -> bool:
        self.writable_handler = None
        self._chunk_settled()
        return True

    def get_remote_address_bytes(self) -> bytes | None:
        """``get_remote_address`` in binary form (4 or 16 bytes)."""
        return packed_address(self.get_remote_address())

    def get_proxied_remote_address_bytes(self) -> bytes | None:
        """``get_proxied_remote_address`` in binary form (4 or 16 bytes)."""
        return packed_address(self.get_proxied_remote_address())

    def is_writable(self) -> bool:
        """False while the client reads slower than we write (the ``ok`` of ``try_end``):
        wait for ``on_writable`` before writing more. For hosted ASGI/WSGI apps."""
        return bool(self._conn.writable)

    def get_socket_info(self) -> tuple[Any, Any, bool]:
        """``(peer, local, tls)`` of the connection as its socket reports them: addresses
        (``(host, port)`` tuples for TCP) and whether it is TLS. Behind a proxy, the client is
        ``get_remote_address()`` and the scheme ``get_scheme()``. For hosted ASGI/WSGI apps
        (``scope["client"]``, ``scope["server"]``); read once per connection."""
        return self._conn.socket_info()  # type: ignore[attr-defined]

    def write_raw_headers(self, pairs: Iterable[tuple[bytes, bytes]]) -> Response:
        """``write_header`` for many ``(name, value)`` pairs of bytes at once — the form ASGI
        apps and the wire use — checked as strictly, at a third of the cost. Nothing is added
        if one pair is refused (``ValueError``)."""
        return self.add_header_lines(header_lines(pairs, _FRAMING_BYTES))

    def end_with_lines(self, status: int, lines: bytes, body: Any,
                       end_connection: bool = False) -> None:
        """``write_status(status)``, ``add_header_lines`` of ``lines`` (header lines checked
        and serialised beforehand, as ``write_raw_headers`` makes them, joined in one bytes
        object) and ``end(body)`` in one call: the whole answer of a hosted ASGI app.

        PERF: the common answer (a ``bytes`` body, keep-alive HTTP/1.1, no header or hook set
        before, a status with a body) is joined here in one go; with the lines checked once
        by the caller, an answer costs 16.6k instructions less than ``write_raw_headers`` +
        ``write_status`` + ``end`` (35.6k against 52.3k per request, callgrind)."""
        conn = self._conn
        req = self.request
        if (self.phase is PENDING and self._headers is None and self._before_head is None
                and (status == 200 or status.__class__ is int and 200 < status != 204
                     and status != 304)
                and body.__class__ is bytes and not end_connection and not self.closing
                and req.keep_alive and req.version == "1.1" and req.method != "HEAD"
                and not conn.draining):
            line = _status_line_of(status) or status_line(status)
            self._status = line
            self._code = status
            size = len(body)
            # The move PENDING -> DONE that end() makes, checked by the test above.
            self.phase = DONE
            conn.write(b"".join((line, conn.state.date, lines, LENGTH_LINES[size]
                                 if size < _LENGTHS else length_line(size), body)))
            conn.response_done(self)
            if self._on_finish is not None:
                self._finished()
            return
        self.write_status(status)
        if lines:
            self.add_header_lines(lines.splitlines(True))
        self.end(body, end_connection)

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
        if self.phase is not PENDING:
            if self.phase is ABORTED:
                return self
            raise RuntimeError("upgrade() after the response was started")
        context = socket_context if socket_context is not None else self.upgrade_context
        if context is None:
            raise RuntimeError("res.upgrade() outside a WebSocket route (see app.ws)")
        head, info = context.accept(self, sec_web_socket_key, sec_web_socket_protocol,
                                    sec_web_socket_extensions, user_data)
        self.accept_upgrade(head, info)
        return self

    # -- files, forms, body filters (corkweb/static.py, multipart.py) -----------------------

    async def sendfile(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Answer with a file (304, Range, HEAD, zero-copy): ``corkweb.static.send_file``'s
        options. ``path`` is trusted: never build it from request input unchecked."""
        from .static import send_file

        options.setdefault("precompressed", False)
        pending = send_file(self, self.request, os.fspath(path), **options)
        if pending is not None:
            await pending

    async def send_fd(self, fd: int, offset: int, count: int, total_size: int) -> None:
        """Send ``count`` bytes of the open file ``fd`` from ``offset`` as (the rest of) a body
        of ``total_size`` bytes, zero-copy on a plain socket (``CorkedProtocol.sendfile``).
        The head goes first if it has not; raises ``ClientDisconnected`` if the client
        leaves. For hosted ASGI apps (``http.response.pathsend``); ``fd`` stays open."""
        if self.phase is PENDING:
            self.try_end(b"", total_size)
        if self.phase is not STREAMING:
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
