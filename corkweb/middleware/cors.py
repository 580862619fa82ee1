"""CORS (the WHATWG Fetch standard, "CORS protocol") as a corkweb middleware.

    cors = CORS(allow_origins=["https://app.example"], allow_credentials=True)
    cors.install(app)        # app.use(cors) + an OPTIONS route for preflights: app.options("/*")

Preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``): answered here
with 204 and the ``access-control-allow-*`` headers when the origin, the method and every
requested header are allowed; otherwise 400 with a message that says which one was refused.
Actual requests from an allowed origin get ``access-control-allow-origin`` (the origin itself,
or ``*`` when every origin is allowed and credentials are not), ``-allow-credentials`` and
``-expose-headers``; from another origin, nothing is added (the browser then blocks the
response). ``vary: origin`` is added whenever the answer depends on the origin. The headers are
added just before the head is serialised, so error answers carry them too.

``allow_origins="*"`` together with ``allow_credentials=True`` is refused at construction: it
would let every site read authenticated responses. Pass a function if you really mean a rule.
An ``Origin`` that is not ``scheme://host[:port]`` (or ``null``) is never allowed, whatever the
rule says, so the header is never reflected with unexpected bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import BadRequest
from ..wire.writer import header_line

__all__ = ["CORS"]

_ORIGIN = re.compile(r"^(null|[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9.\-_~%!$&'()*+,;=:\[\]]+)$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SAFE_METHODS = ("GET", "HEAD", "POST")


class CORS:
    """CORS middleware: ``mw(res, req, data) -> data`` (answers preflights itself).

    ``allow_origins``: a list of exact origins, ``"*"``, or a function ``origin -> bool``.
    ``allow_methods`` (default GET, HEAD, POST, PUT, PATCH, DELETE), ``allow_headers``
    (request headers a page may send; ``"*"`` for any), ``expose_headers``,
    ``allow_credentials``, ``max_age`` (seconds a preflight may be cached, 600).
    """

    def __init__(self, allow_origins: Iterable[str] | str | Callable[[str], bool] = (), *,
                 allow_methods: Iterable[str] = ("GET", "HEAD", "POST", "PUT", "PATCH",
                                                 "DELETE"),
                 allow_headers: Iterable[str] | str = (), expose_headers: Iterable[str] = (),
                 allow_credentials: bool = False, max_age: int = 600) -> None:
        self.allow_all = allow_origins == "*"
        if self.allow_all and allow_credentials:
            raise ValueError("allow_origins='*' with allow_credentials=True would let any site "
                             "read authenticated responses; list the origins or pass a function")
        self._rule: Callable[[str], bool] | None = None
        self._origins: frozenset[str] = frozenset()
        if callable(allow_origins):
            self._rule = allow_origins
        elif not self.allow_all:
            if isinstance(allow_origins, str):
                allow_origins = [allow_origins]
            self._origins = frozenset(o.rstrip("/") for o in allow_origins)
        self.methods = tuple(m.upper() for m in allow_methods)
        self.any_header = allow_headers == "*"
        self.headers = frozenset() if isinstance(allow_headers, str) else frozenset(
            h.lower() for h in allow_headers)
        self.expose = ", ".join(expose_headers)
        self.credentials = allow_credentials
        self.max_age = int(max_age)
        fixed = []
        if allow_credentials:
            fixed.append(header_line("access-control-allow-credentials", "true"))
        if self.expose:
            fixed.append(header_line("access-control-expose-headers", self.expose))
        self._fixed: tuple[bytes, ...] = tuple(fixed)
        self._valid: dict[str, bool] = {}

    def origin_allowed(self, origin: str) -> bool:
        """Whether ``origin`` may read responses (it must also look like an origin)."""
        # PERF: browsers send a few distinct origins; remembering that one is well-formed
        # saves the regex (~1 µs here) on nearly every cross-origin request.
        valid = self._valid
        ok = valid.get(origin)
        if ok is None:
            ok = _ORIGIN.match(origin) is not None
            if len(origin) <= 256:  # bounded: at most 1024 short entries
                if len(valid) >= 1024:
                    valid.clear()
                valid[origin] = ok
        if not ok:
            return False
        if self.allow_all:
            return True
        if self._rule is not None:
            return bool(self._rule(origin))
        return origin in self._origins

    def install(self, group: Any) -> CORS:
        """``group.use(self)`` where possible, and an ``OPTIONS /*`` route for preflights."""
        use = getattr(group, "use", None)
        if use is not None:
            use(self)
        group.options("/*", self.preflight)
        return self

    # -- the middleware ----------------------------------------------------------------------

    def __call__(self, res: Any, req: Any, data: Any) -> Any:
        # PERF: same-origin requests and non-browser clients send no Origin: look at the raw
        # header names before building the headers dict (~8k instructions saved for them).
        for name, _ in req.headers:
            if name == b"origin":
                break
        else:
            return data if data is not None else True
        origin = req.get_header("origin")
        if origin is None:
            return data if data is not None else True
        if req.method == "OPTIONS" and req.get_header("access-control-request-method"):
            self._answer_preflight(res, req, origin)
            return None  # answered: stop the chain
        if self.origin_allowed(origin):
            res.before_head(self._decorate)
        elif not self.allow_all:
            res.before_head(_vary_origin)
        return data if data is not None else True

    def preflight(self, res: Any, req: Any) -> None:
        """Route handler for ``OPTIONS``: a preflight, or a plain OPTIONS (204 + ``allow``)."""
        origin = req.get_header("origin")
        if origin is not None and req.get_header("access-control-request-method"):
            self._answer_preflight(res, req, origin)
            return
        res.write_status(204).write_header("allow", ", ".join(self.methods + ("OPTIONS",)))
        res.end()

    def _decorate(self, res: Any, origin: str | None = None) -> None:
        # PERF: the lines are built from checked values (the origin matched _ORIGIN, the rest
        # was validated at construction) and appended directly: write_header's per-character
        # checks made the middleware cost ~10 µs per request instead of ~4.
        if self.allow_all and not self.credentials:
            lines = [b"access-control-allow-origin: *\r\n"]
        else:
            if origin is None:
                origin = res.request.get_header("origin", "")
            lines = [b"access-control-allow-origin: " + origin.encode("latin-1") + b"\r\n",
                     b"vary: origin\r\n"]
        lines += self._fixed
        res.add_header_lines(lines)

    def _answer_preflight(self, res: Any, req: Any, origin: str) -> None:
        if res.has_responded():
            return
        method = req.get_header("access-control-request-method", "").strip()
        if not self.origin_allowed(origin):
            raise BadRequest("CORS preflight refused: origin not allowed")
        if method not in self.methods and method not in _SAFE_METHODS:
            raise BadRequest(f"CORS preflight refused: method {method[:32]!r} not allowed")
        requested = [h.strip().lower() for h in
                     req.get_header("access-control-request-headers", "").split(",") if h.strip()]
        for header in requested:
            if not _TOKEN.match(header):
                raise BadRequest("CORS preflight refused: malformed header name")
            if not self.any_header and header not in self.headers:
                raise BadRequest(f"CORS preflight refused: header {header[:64]!r} not allowed")
        res.write_status(204)
        self._decorate(res, origin)
        if self.allow_all and not self.credentials:
            res.write_header("vary", "origin")  # the method/header answer still varies
        res.write_header("access-control-allow-methods", ", ".join(self.methods))
        if requested:
            res.write_header("access-control-allow-headers", ", ".join(requested))
        res.write_header("access-control-max-age", self.max_age)
        res.end()


def _vary_origin(res: Any) -> None:
    res.write_header("vary", "origin")
