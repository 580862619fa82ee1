"""Typed readers of the request body: text, JSON, urlencoded forms (``res.get_json()``...).

They sit on the exchange's body intake (``corkweb/server/intake.py``: chunks fed by the
connection, ``get_data``/``on_data``) and add decoding and its errors: 400 for a body that does
not decode, 415 for JSON sent under another content type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from .errors import BadRequest, ClientDisconnected, UnsupportedMediaType

if TYPE_CHECKING:
    import asyncio

__all__ = ["BodyReaders", "ClientDisconnected", "is_json_media_type"]


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or ``type/subtype+json``, parameters ignored (RFC 8259 §11,
    RFC 6839 §3.1)."""
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    kind, slash, subtype = media.partition("/")
    return bool(slash) and bool(kind) and (media == "application/json"
                                           or subtype.endswith("+json"))


class BodyReaders:
    """``get_text``, ``get_json``, ``get_form_urlencoded`` for :class:`corkweb.Response`."""

    if TYPE_CHECKING:  # provided by the exchange
        request: Any
        options: Any

        def get_data(self) -> asyncio.Future[bytes]: ...

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
        req = self.request
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
            return self.options.json_loads(data)
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
