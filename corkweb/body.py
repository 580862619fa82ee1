"""Reading the request body: ``res.get_data()``, ``res.on_data``, and the typed helpers.

The body belongs to the response object, as in socketify.py, because reading it is tied to the
connection: the connection feeds chunks in as they are parsed (``_feed``/``_feed_end``), and
``100 Continue`` is sent the first time a handler asks for the body. A chunk that arrives before
anyone reads is kept, so awaiting something before ``get_data()`` never loses body bytes
(socketify's issue #207).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from .errors import BadRequest, CorkwebError, UnsupportedMediaType

__all__ = ["BodyReader", "ClientDisconnected", "is_json_media_type"]


class ClientDisconnected(CorkwebError, ConnectionError):
    """The client went away before the request body was complete."""


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or ``type/subtype+json``, parameters ignored (RFC 8259 §11,
    RFC 6839 §3.1)."""
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    kind, slash, subtype = media.partition("/")
    return bool(slash) and bool(kind) and (media == "application/json"
                                           or subtype.endswith("+json"))


class BodyReader:
    """The body-reading half of :class:`corkweb.response.Response`."""

    # Set by Response.__init__ / the connection; declared here for the type checker.
    _conn: Any
    _req: Any
    _body_done: bool
    _close: bool
    _continue_sent = False
    _body: list[bytes] | None = None
    _body_error: BaseException | None = None
    _waiters: list[asyncio.Future[Any]] | None = None
    _on_data: Callable[..., Any] | None = None

    if TYPE_CHECKING:

        def write_continue(self) -> Any: ...  # defined by Response


    def on_data(self, handler: Callable[[Any, bytes, bool], Any]) -> BodyReader:
        """Stream the body: ``handler(res, chunk, is_end)`` per chunk, ``is_end`` on the last.

        Chunks that arrived before the handler was attached are delivered at once, so an
        ``await`` before ``on_data`` never loses body bytes.
        """
        if self._on_data is not None or self._waiters is not None:
            raise RuntimeError("the request body is already being read")
        self._on_data = handler
        self.write_continue()
        pending, self._body = self._body, None
        if pending:
            for piece in pending:
                handler(self, piece, False)
        if self._body_done:
            handler(self, b"", True)
        elif self._body_error is not None:
            raise self._body_error
        return self

    def get_data(self) -> asyncio.Future[bytes]:
        """Await the whole body: ``body = await res.get_data()`` (``bytes``; socketify gave a
        ``BytesIO``)."""
        if self._on_data is not None:
            raise RuntimeError("the request body is being streamed through on_data")
        fut: asyncio.Future[bytes] = self._conn.loop.create_future()
        if self._body_error is not None:
            fut.set_exception(self._body_error)
        elif self._body_done:
            fut.set_result(self._joined_body())
        else:
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(fut)
            self.write_continue()
        return fut

    def _joined_body(self) -> bytes:
        body = self._body
        if body is None:
            return b""
        if len(body) != 1:
            self._body = body = [b"".join(body)]
        return body[0]

    async def get_text(self, encoding: str = "utf-8") -> str:
        """The body decoded as text; undecodable bytes answer 400."""
        data = await self.get_data()
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise BadRequest(f"request body is not valid {encoding}: {exc.reason}") from None

    async def get_json(self, *, any_content_type: bool = False) -> Any:
        """The body parsed as JSON (``None`` when empty); invalid JSON answers 400.

        A body must be sent as ``application/json`` or a ``+json`` type (415 otherwise,
        before the body is read): a cross-site HTML form or a no-CORS ``fetch`` can post
        ``text/plain`` without a preflight, and would otherwise smuggle JSON past CORS.
        ``any_content_type=True`` parses whatever the content type says (for clients you
        know send JSON under another name).
        """
        req = self._req
        if not any_content_type and (req.content_length or req.chunked):
            ctype = req.get_header("content-type")
            if not is_json_media_type(ctype):
                raise UnsupportedMediaType(
                    f"expected a JSON body (content-type application/json or */*+json), "
                    f"got {'no content-type' if ctype is None else repr(ctype)}")
        data = await self.get_data()
        if not data:
            return None
        try:
            return self._conn.options.json_loads(data)
        except ValueError as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None

    async def get_form_urlencoded(self, encoding: str = "utf-8") -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body as a dict (last value of each key)."""
        text = await self.get_text(encoding)
        try:
            return dict(parse_qsl(text, keep_blank_values=True, encoding=encoding,
                                  errors="strict", max_num_fields=10_000))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"invalid form body: {exc}") from None

    # called by the connection -----------------------------------------------------------

    def _feed(self, piece: bytes) -> None:
        handler = self._on_data
        if handler is not None:
            handler(self, piece, False)
        elif self._body is None:
            self._body = [piece]
        else:
            self._body.append(piece)

    def _feed_end(self) -> None:
        self._body_done = True
        handler = self._on_data
        if handler is not None:
            handler(self, b"", True)
        waiters, self._waiters = self._waiters, None
        if waiters:
            body = self._joined_body()
            for fut in waiters:
                if not fut.done():
                    fut.set_result(body)

    def _fail_body(self, exc: BaseException) -> bool:
        """The body cannot complete; returns True if a reader was told (it will answer)."""
        self._body_error = exc
        self._close = True
        told = False
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_exception(exc)
                told = True
        return told

