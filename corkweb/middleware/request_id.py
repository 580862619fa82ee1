"""Request ids: one id per request, echoed to the client, in the access log and error logs.

    app.use(RequestID())                 # X-Request-ID in, out, and in the logs

The id is the ``X-Request-ID`` header of the request when the connection comes from a trusted
proxy (``App(trusted_proxies=...)``: nginx, a load balancer that already assigned one), so one
id follows the request through every hop; a client that talks to corkweb directly cannot choose
its id (it could otherwise forge log lines that look like another request's). Otherwise, or if
the proxy's value is not 1-128 characters of ``A-Z a-z 0-9 - _ . : / + =``, corkweb generates
one: 32 hex digits, a random prefix per worker process followed by a counter (unique across
workers and restarts without a system call per request).

The id is ``req.request_id``, the ``x-request-id`` header of every answer (error answers too),
the ``{request_id}`` field of the access log format, and part of the error log lines
("unhandled error in handler for GET /x (request id ...)") and background task failures.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from typing import Any

from ..wire.writer import header_line

__all__ = ["RequestID"]

_VALID = re.compile(r"[A-Za-z0-9\-_.:/+=]{1,128}")


class _Ids:
    """Process-wide generator; a forked worker draws a new prefix."""

    def __init__(self) -> None:
        self.reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_new_id = _Ids()


class RequestID:
    """Middleware: ``RequestID(header="x-request-id", trust_incoming="proxies",
    generate=None)``.

    ``trust_incoming``: ``"proxies"`` (the default) takes the header only from the app's
    trusted proxies, ``True`` from anyone (an internal service no client reaches), ``False``
    never. ``generate``: a function returning a new id (``uuid.uuid4().hex``, ...).
    """

    def __init__(self, header: str = "x-request-id", *,
                 trust_incoming: bool | str = "proxies",
                 generate: Callable[[], str] | None = None) -> None:
        if trust_incoming not in (True, False, "proxies"):
            raise ValueError(f"trust_incoming must be True, False or 'proxies', "
                             f"got {trust_incoming!r}")
        self.header = header.lower()
        self._raw = self.header.encode("latin-1")
        header_line(self.header, "x")  # checks the name now, not per request
        self.trust_incoming = trust_incoming
        self.generate = generate or _new_id

    def incoming(self, res: Any, req: Any) -> str | None:
        """The id that the request brought, if it may be believed and is well formed."""
        if self.trust_incoming is False:
            return None
        raw = self._raw
        value = None
        for name, found in req.headers:
            if name == raw:
                value = found
                break
        if value is None:
            return None
        if self.trust_incoming == "proxies" and not res.from_trusted_proxy():
            return None
        text = value.decode("latin-1").strip()
        return text if _VALID.fullmatch(text) else None

    def __call__(self, res: Any, req: Any, data: Any) -> Any:
        rid = self.incoming(res, req)
        if rid is None:
            rid = self.generate()
            if self.generate is not _new_id and not _VALID.fullmatch(rid):
                raise ValueError(f"RequestID: the generated id {rid[:40]!r} is not 1-128 "
                                 "characters of A-Z a-z 0-9 - _ . : / + =")
        req.request_id = rid
        # The id is ours or matched _VALID: the line cannot inject a header.
        line = (self._raw + b": " + rid.encode("latin-1") + b"\r\n",)
        res.before_head(lambda res: res.write_header_lines(line))
        return data if data is not None else True
