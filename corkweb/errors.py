"""The one error tree of corkweb.

``CorkwebError`` is the root. ``HTTPError`` carries the status to answer with on the class (or
the instance), so an error raised anywhere — a handler, a middleware, the wire parser — turns
into the right response without a table of special cases. ``ProtocolError`` marks input that
broke HTTP itself: the connection is closed after the answer, because the framing can no longer
be trusted (RFC 9112 §2.2, §6.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

__all__ = [
    "CorkwebError",
    "ClientDisconnected",
    "IllegalTransition",
    "HTTPError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "RequestTimeout",
    "PayloadTooLarge",
    "URITooLong",
    "UnsupportedMediaType",
    "ExpectationFailed",
    "UnprocessableContent",
    "RequestValidationError",
    "TooManyRequests",
    "RequestHeaderFieldsTooLarge",
    "InternalServerError",
    "ServiceUnavailable",
    "HTTPVersionNotSupported",
    "ProtocolError",
    "AppFrozenError",
    "AlreadyServingError",
]


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status``, or ``"Unknown"``."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class CorkwebError(Exception):
    """Root of every error corkweb raises on purpose."""


class AppFrozenError(CorkwebError, RuntimeError):
    """A setup method (route, middleware, hook) was called after the app started serving."""


class AlreadyServingError(CorkwebError, RuntimeError):
    """An app was served a second time while its first server had not stopped."""


class HTTPError(CorkwebError):
    """An error that answers with an HTTP status.

    ``HTTPError(404)``, ``HTTPError(409, "name taken")``, or a subclass such as
    ``NotFound("no such user")``. ``headers`` are added to the error response (``Allow`` for
    405, ``Retry-After`` for 503, ...).
    """

    status: int = 500

    def __init__(
        self,
        status: int | None = None,
        message: str | None = None,
        headers: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        if status is not None:
            if not isinstance(status, int) or not 100 <= status <= 999:
                raise ValueError(f"HTTPError status must be an int from 100 to 999, got {status!r}")
            self.status = status
        self.message = message if message is not None else reason_phrase(self.status)
        self.headers: list[tuple[str, str]] = list(headers) if headers else []
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class _FixedStatus(HTTPError):
    """Base of the named subclasses: the status is fixed, the first argument is the message."""

    def __init__(
        self, message: str | None = None, headers: Iterable[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(None, message, headers)


class BadRequest(_FixedStatus):
    status = 400


class Unauthorized(_FixedStatus):
    status = 401


class Forbidden(_FixedStatus):
    status = 403


class NotFound(_FixedStatus):
    status = 404


class MethodNotAllowed(_FixedStatus):
    """405; ``allowed`` becomes the ``Allow`` header (RFC 9110 §15.5.6)."""

    status = 405

    def __init__(self, allowed: Iterable[str] = (), message: str | None = None) -> None:
        self.allowed = tuple(allowed)
        super().__init__(message, [("allow", ", ".join(self.allowed))])


class RequestTimeout(_FixedStatus):
    status = 408


class PayloadTooLarge(_FixedStatus):
    status = 413


class URITooLong(_FixedStatus):
    status = 414


class UnsupportedMediaType(_FixedStatus):
    status = 415


class ExpectationFailed(_FixedStatus):
    status = 417


class UnprocessableContent(_FixedStatus):
    status = 422


class RequestValidationError(UnprocessableContent):
    """Request inputs of a typed handler failed conversion or validation.

    Answered 422 with an RFC 9457 ``application/problem+json`` document whose ``errors`` list
    holds each failure: ``{"loc": ["query", "limit"], "msg": "...", "type": "..."}``.
    """

    def __init__(self, errors: Iterable[dict[str, Any]], message: str | None = None) -> None:
        self.errors = list(errors)
        if message is None:
            count = len(self.errors)
            first = self.errors[0] if self.errors else {"loc": [], "msg": "invalid input"}
            where = ".".join(str(part) for part in first["loc"])
            message = f"{where}: {first['msg']}" if count == 1 else (
                f"{count} request inputs are invalid; first {where}: {first['msg']}")
        super().__init__(message)


class TooManyRequests(_FixedStatus):
    """429: a rate limit was exceeded (RFC 6585 §4); give ``retry-after`` in ``headers``."""

    status = 429


class RequestHeaderFieldsTooLarge(_FixedStatus):
    status = 431


class InternalServerError(_FixedStatus):
    status = 500


class ServiceUnavailable(_FixedStatus):
    status = 503


class HTTPVersionNotSupported(_FixedStatus):
    status = 505


class ClientDisconnected(CorkwebError, ConnectionError):
    """The client went away before the request body was complete."""


class IllegalTransition(CorkwebError, RuntimeError):
    """A state machine was asked for a move its transition table does not allow (a bug in
    corkweb or in code driving it, never the peer's doing)."""


class ProtocolError(HTTPError):
    """The peer broke HTTP/1.1 framing or syntax: answer ``status`` and close the connection.

    Raised by :mod:`corkweb.wire`; never by user code. ``status`` is the hint of what to answer
    (400 for malformed input, 413/414/431 for limits, 505 for versions) — h11's
    ``error_status_hint`` idea.
    """
