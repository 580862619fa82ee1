"""``Request``: what a handler reads about the request (``req`` in ``handler(res, req)``).

Unlike socketify.py's request, which points into C++ memory that is gone after the first
``await``, a corkweb ``Request`` is a plain Python object: it stays valid for as long as you
keep it, across any number of awaits. ``preserve()`` exists for code ported from socketify and
simply returns the request.

The body is read through the response (``await res.get_data()``, ``res.on_data``), as in
socketify, because reading it is tied to the connection's flow control.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from .wire.cookies import parse_cookies
from .wire.parser import RequestHead

__all__ = ["Request"]

_STATIC = object()  # sentinel of Request._route: a static route (pattern == path) matched


class Request(RequestHead):
    """The request head plus the route match; built by the parser, completed by the router."""

    # Class-level defaults: a request that needs none of these costs no assignment. The
    # lazily built views (headers dict, cookies, query) share one ``_cache`` dict.
    #: The route parameters by name, as the router matched them (``None``: no parameters).
    route_params: dict[str, Any] | None = None
    #: The same values in pattern order (``get_parameter(0)``).
    route_values: tuple[Any, ...] = ()
    #: Set by :meth:`set_yield`: the app passes the request to the next matching route.
    yield_requested = False
    _cache: dict[str, Any] | None = None
    _context: dict[str, Any] | None = None
    #: What the router matched, set by the app: its Route for a dynamic route, ``None`` when
    #: nothing matched. A static route stores nothing: its pattern is the path itself (free for
    #: the common request). ``route`` reads the pattern from it.
    matched: Any = _STATIC
    #: The request's id when the ``RequestID`` middleware runs (``X-Request-ID``), else None.
    request_id: str | None = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"

    # -- request line -------------------------------------------------------------------

    def get_method(self) -> str:
        """The method as received, upper-case: ``"GET"``."""
        return self.method

    def get_url(self) -> str:
        """The path, without the query string, percent-encoded as received: ``"/a%20b"``."""
        return self.path

    def get_full_url(self) -> str:
        """Path and query string as received: ``"/search?q=x"``."""
        return self.url

    def is_ancient(self) -> bool:
        """True for an HTTP/1.0 client."""
        return self.version == "1.0"

    # -- headers --------------------------------------------------------------------------

    def get_headers(self) -> dict[str, str]:
        """All headers as ``{lower-case name: value}``.

        Repeated fields are joined with ``", "`` (RFC 9110 §5.3); repeated ``cookie`` lines with
        ``"; "``.
        """
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        m: dict[str, str] | None = cache.get("headers")
        if m is None:
            m = {}
            for raw_name, raw_value in self.headers:
                name = raw_name.decode("latin-1")
                value = raw_value.decode("latin-1")
                if name in m:
                    m[name] += ("; " if name == "cookie" else ", ") + value
                else:
                    m[name] = value
            cache["headers"] = m
        return m

    def get_header(self, name: str, default: str | None = None) -> str | None:
        """One header by name (any case), or ``default``."""
        return self.get_headers().get(name.lower(), default)

    def for_each_header(self, callback: Callable[[str, str], Any]) -> None:
        """Call ``callback(name, value)`` for each header line, in arrival order."""
        for raw_name, raw_value in self.headers:
            callback(raw_name.decode("latin-1"), raw_value.decode("latin-1"))

    # -- query string ---------------------------------------------------------------------

    def get_queries(self) -> dict[str, list[str]]:
        """The query string as ``{key: [values...]}``, percent-decoded, blanks kept."""
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        q: dict[str, list[str]] | None = cache.get("queries")
        if q is None:
            q = parse_qs(self.query, keep_blank_values=True) if self.query else {}
            cache["queries"] = q
        return q

    def get_query(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` in the query string, or ``default``."""
        values = self.get_queries().get(key)
        return values[0] if values else default

    # -- route parameters -------------------------------------------------------------------

    def get_parameter(self, key: int | str, default: Any = None) -> Any:
        """A route parameter by name (``"id"`` for ``/users/:id``) or by position (``0``)."""
        if key.__class__ is str:  # PERF: by name is the common call: 0.4k instructions less
            params = self.route_params
            return default if params is None else params.get(key, default)
        if isinstance(key, int):
            values = self.route_values
            return values[key] if -len(values) <= key < len(values) else default
        params = self.route_params
        return default if params is None else params.get(key, default)

    def get_parameters(self) -> list[Any]:
        """Route parameters in pattern order."""
        return list(self.route_values)

    @property
    def params(self) -> dict[str, Any]:
        """Route parameters by name: ``{"id": "42"}`` (converted: ``:id<int>`` gives ``42``)."""
        if self.route_params is None:
            self.route_params = {}
        return self.route_params

    def set_match(self, params: dict[str, Any], values: tuple[Any, ...],
                  route: Any = None) -> None:
        """Set the route parameters (the router's match, by name and in order) and, when
        given, the route that matched."""
        self.route_params = params
        self.route_values = values
        if route is not None:
            self.matched = _STATIC if route.regex is None else route

    @property
    def route(self) -> str | None:
        """The pattern of the route that matched, as registered: ``"/users/:id"`` for
        ``/users/42`` — never the raw path of a dynamic route, so metrics and traces keep a
        bounded set of names. ``None`` when no route matched (a 404 or 405)."""
        route = self.matched
        if route is _STATIC:
            return self.path
        return None if route is None else str(route.path)

    @property
    def context(self) -> dict[str, Any]:
        """A dict for middleware to attach values to this request (the ``Sessions``
        middleware keeps the session here); created on first use."""
        if self._context is None:
            self._context = {}
        return self._context

    # -- cookies --------------------------------------------------------------------------

    def get_cookies(self) -> dict[str, str]:
        """Cookies sent by the client, ``{name: value}``, values percent-decoded."""
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        c: dict[str, str] | None = cache.get("cookies")
        if c is None:
            header = self.get_headers().get("cookie")
            c = parse_cookies(header) if header else {}
            cache["cookies"] = c
        return c

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """One cookie by name, or ``default``."""
        return self.get_cookies().get(name, default)

    # -- socketify compatibility ------------------------------------------------------------

    def preserve(self) -> Request:
        """Return the request itself: it is always valid after ``await`` (idempotent)."""
        return self

    def set_yield(self, value: bool = True) -> None:
        """Ask the router to pass this request to the next matching route."""
        self.yield_requested = bool(value)

    def get_yield(self) -> bool:
        """Whether :meth:`set_yield` asked to fall through to the next route."""
        return self.yield_requested
