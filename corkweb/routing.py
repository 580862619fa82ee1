"""URL routing: match a request method and path to the best registered route.

Pure module: no I/O, no asyncio; from corkweb only the errors it raises.

Pattern syntax
--------------
A pattern starts with ``/`` and is split on ``/`` into segments:

``users``
    A static segment, compared with the raw (percent-encoded) request path as it
    arrives on the wire, so register ``/a%20b``, not ``/a b``.
``:name``
    A parameter: one non-empty segment, passed on as a ``str``.
``:name<conv>``
    A typed parameter. ``str`` is the default (``:name``). ``int`` takes
    ``-?[0-9]+`` (at most 640 digits) and gives an ``int``. ``float`` takes ``1``, ``-2.5`` or
    ``1e+20`` and gives a ``float``. ``uuid`` takes ``8-4-4-4-12`` hex digits and
    gives a ``uuid.UUID``. ``path`` takes the rest of the path, slashes included
    (it must be the last segment), and gives a ``str``. If the converter does not
    accept the text, the route does not match: ``/users/:id<int>`` does not
    match ``/users/abc``.
``*`` (a whole last segment) and ``prefix*`` (a last-segment suffix)
    The rest of the path, which may be empty and may contain slashes.
    ``/static/*`` matches ``/static/`` and ``/static/a/b``, but not ``/static``.
    ``/sitemap_*`` matches ``/sitemap_823.xml``. ``*`` may appear only as the
    last character of a pattern, and the text it matches is not a parameter.
    Use ``:name<path>`` when you need that text.

A trailing slash is significant: ``/a`` and ``/a/`` are different routes. No
redirect is made from one to the other.

Parameter values are percent-decoded (``urllib.parse.unquote``) before they are
converted. Segments are split on the *raw* path, so ``/files/a%2Fb`` matches
``/files/:name`` and gives ``name == "a/b"``. The int, float and uuid converters
check the raw text. Their characters are unreserved (RFC 3986 §2.3), so clients
have no reason to encode them.

Priority (independent of registration order)
--------------------------------------------
1. Only routes whose method fits are considered. A route fits if its method is
   the request method, or ``GET`` for a ``HEAD`` request, or ``ANY``. Request
   methods are case-sensitive (RFC 9110 §9.1).
2. Candidates are compared segment by segment, left to right. The first segment
   whose kind differs decides, in this order: static > parameter (``:name``,
   ``:name<int>``, ...) > ``:name<path>`` > ``prefix*`` > ``*``. Static routes
   therefore always beat dynamic ones. A typed parameter ranks the same as a plain
   one: between ``/u/:id<int>`` and ``/u/:name``, rule 4 decides.
3. If that is equal: the exact method beats a GET route answering HEAD, and a GET
   route answering HEAD beats ``ANY``.
4. If that is still equal: registration order.

`match` returns the best candidate. `iter_matches` yields every candidate in
this order (fall-through, ``req.set_yield(True)``). If the path matches some
route but none of them fits the method, `match` raises `MethodNotAllowed`, whose
``.allowed`` lists the methods that would have matched. ``HEAD`` is in that list
when ``GET`` is, and ``OPTIONS`` only when an OPTIONS route exists. Otherwise
`match` raises `NotFound`. Both are ``corkweb.errors``' own: they answer 404 and 405
(with ``Allow``) wherever they are raised.

Life cycle and URL building
---------------------------
`Router.add` checks the pattern. It raises ValueError for a bad pattern, for a
route already registered with the same method and pattern, and for a name that
is already taken. `Router.freeze` compiles the routes. After it, `add` raises
RuntimeError, and before it, so does `match`.

``url_for(name, **params)`` builds the path of a named route. It percent-encodes
str values (a ``/`` becomes ``%2F``) and path values (``/`` is kept). An int,
float or uuid value must pass its converter. An unknown name raises
LookupError. A missing, unknown or invalid parameter raises ValueError, and so
does a route that contains a ``*``.

How it is fast
--------------
`freeze` compiles everything once. A static path costs one dict lookup. Dynamic
routes are grouped by request method, then by their first segment when it is
static. Each group is OR-ed into one regex in priority order (bottle's idea).
Python's ``re`` then tries the alternatives in C, and ``Match.lastindex`` tells
which route matched. No code is generated.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

from .errors import MethodNotAllowed, NotFound

__all__ = ["Match", "MethodNotAllowed", "NotFound", "Route", "Router"]

# Segment ranks: a lower rank wins (rule 2 of the docstring).
STATIC, PARAM, PATH, SUFFIX, WILDCARD = range(5)


class _Converter(NamedTuple):
    regex: str  # what the raw segment must look like; no capturing groups
    convert: Callable[[str], object]  # raw text -> value


_CONVERTERS: dict[str, _Converter] = {
    "str": _Converter(r"[^/]+", unquote),
    "path": _Converter(r".+", unquote),
    # The regexes below admit no '%', so decoding before converting is a no-op. They
    # also make conversion safe: int() raises above sys.get_int_max_str_digits()
    # digits (CVE-2020-10735), and 640 is the lowest limit that can be set.
    "int": _Converter(r"-?[0-9]{1,640}", int),
    "float": _Converter(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?", float),
    "uuid": _Converter(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", uuid.UUID),
}
_PARAM_SEGMENT = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)(?:<([A-Za-z_]+)>)?")
# An upper-case token (RFC 9110 §5.6.2).
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Z]+")


class _Segment(NamedTuple):
    rank: int
    text: str  # the literal text: a static segment, or the prefix of a '*'
    name: str  # the parameter name ("" when the segment has none)
    conv: str  # the converter name ("" when the segment has none)


class Route:
    """One registered route: a record that the Router fills in, then only reads."""

    __slots__ = (
        "method",
        "path",
        "handler",
        "name",
        "param_names",
        "segments",
        "converters",
        "ranks",
        "index",
        "regex",
        "_numbers",
        "_plain",
    )

    def __init__(self, method: str, path: str, handler: Any, name: str | None, index: int) -> None:
        self.method = method
        self.path = path
        self.handler = handler  # typed Any, not object: the app keeps its own record here
        self.name = name
        self.index = index  # registration order, the last tie-breaker
        self.segments = segments = _parse(path)  # raises ValueError for a bad pattern
        self.ranks = tuple(seg.rank for seg in segments)
        params = [seg for seg in segments if seg.name]
        self.param_names = tuple(seg.name for seg in params)
        self.converters = tuple(_CONVERTERS[seg.conv].convert for seg in params)
        self._numbers = tuple(range(1, len(params) + 1))  # group numbers in self.regex
        # One plain ``:name`` (a str) is the common dynamic route; lookup() serves it inline.
        self._plain = len(params) == 1 and params[0].conv == "str"
        # One capturing group per parameter; None for a static route (a dict finds it).
        self.regex: re.Pattern[str] | None = None
        if any(rank != STATIC for rank in self.ranks):
            body = "/" + "/".join(map(_segment_regex, segments))
            self.regex = re.compile(body, re.DOTALL)

    def __repr__(self) -> str:
        name = f" name={self.name!r}" if self.name else ""
        return f"<Route {self.method} {self.path}{name}>"

    def _match(self, m: re.Match[str], numbers: tuple[int, ...]) -> Match:
        """Convert the parameters found in groups `numbers` of `m`."""
        names, converters = self.param_names, self.converters
        # One parameter needs its own branch: m.group(a) gives a str, m.group(a, b) a
        # tuple and m.group() the whole match. PERF: it is also the common case, and
        # this branch takes 0.35 µs against 1 µs for the generic one.
        if len(numbers) == 1:
            value = converters[0](m.group(numbers[0]))
            return Match(self, {names[0]: value}, (value,))
        texts = m.group(*numbers) if numbers else ()
        pairs = zip(converters, texts, strict=False)
        values = tuple([convert(text) for convert, text in pairs])
        # Not strict=True: the lengths are equal by construction, and it costs 0.2 µs.
        return Match(self, dict(zip(names, values, strict=False)), values)

    def _build(self, params: dict[str, object]) -> str:
        where = f"url_for({self.name!r}) for {self.path!r}"
        if any(seg.rank >= SUFFIX for seg in self.segments):
            raise ValueError(f"{where}: cannot fill a '*'; use :name<path> instead")
        missing = [name for name in self.param_names if name not in params]
        if missing:
            raise ValueError(f"{where}: missing parameter(s) {', '.join(missing)}")
        unknown = sorted(set(params) - set(self.param_names))
        if unknown:
            raise ValueError(f"{where}: unknown parameter(s) {', '.join(unknown)}")
        parts = [
            seg.text if seg.rank == STATIC else _format(where, seg, params[seg.name])
            for seg in self.segments
        ]
        return "/" + "/".join(parts)


class Match:
    """The result of a successful match.

    ``params`` holds the converted values by name. ``values`` holds them in
    pattern order, for ``req.get_parameter(index)``.
    """

    __slots__ = ("route", "params", "values")

    def __init__(self, route: Route, params: dict[str, object], values: tuple[object, ...]) -> None:
        self.route = route
        self.params = params
        self.values = values

    def __repr__(self) -> str:
        return f"<Match {self.route!r} params={self.params!r}>"


class _Group:
    """The dynamic routes that one request method can reach, OR-ed into one regex.

    Each alternative ends with an empty marker group ``()``. That group closes last,
    so ``m.lastindex`` names the route that matched. ``slots`` maps the marker's
    number to the route, to the numbers of the route's parameter groups and to the
    route's position in ``routes``.
    """

    __slots__ = ("routes", "regex", "slots")

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes  # best first
        self.slots: dict[int, tuple[Route, tuple[int, ...], int]] = {}
        alternatives = []
        number = 1  # the number of the next group
        for position, route in enumerate(routes):
            marker = number + len(route.param_names)
            self.slots[marker] = (route, tuple(range(number, marker)), position)
            assert route.regex is not None  # only dynamic routes get here
            alternatives.append(route.regex.pattern + "()")
            number = marker + 1
        # PERF: a marker at the end, not a group around each alternative, leaves a
        # literal first in each one. re then factors out the common prefix ("/api/")
        # and skips an alternative whose first character differs. With 250 routes the
        # last one matches in 3 µs; with a group around each it took 67 µs.
        # "(?!)" never matches: an empty group rejects every path.
        self.regex = re.compile("|".join(alternatives) or "(?!)", re.DOTALL)


_KNOWN_MAX = 256  # paths remembered per table (Router.lookup)
_KNOWN_PATH_MAX = 256  # the longest path remembered


class _Table:
    """The dynamic routes one request method can reach, bucketed by first segment.

    A route whose first segment is static goes into the bucket of that text. Any
    other route goes into ``rest``. A route from the bucket always beats one from
    ``rest``, because its first segment ranks higher. The buckets therefore keep
    the priority order. PERF: a path skips the other buckets, and the routes of a
    bucket all begin with "/text/", which re factors out. With 250 "/api/..." routes
    registered, /users/42 takes 1.7 µs instead of 5.1 µs, and the last /api route
    6.7 µs instead of 11.4 µs. The bucket lookup costs 0.26 µs.
    """

    __slots__ = ("by_first", "rest", "known")

    def __init__(self, routes: list[Route]) -> None:
        #: Paths ``Router.lookup`` matched to a route with one plain parameter: the route,
        #: the parameter's name and its value (see there).
        self.known: dict[str, tuple[Route, str, str]] = {}
        by_first: dict[str, list[Route]] = {}
        rest: list[Route] = []
        for route in routes:  # best first; each list keeps that order
            first = route.segments[0]
            if first.rank == STATIC:
                by_first.setdefault(first.text, []).append(route)
            else:
                rest.append(route)
        self.rest = (_Group(rest),)
        # first segment -> the groups to try, best first
        self.by_first = {text: (_Group(found), *self.rest) for text, found in by_first.items()}

    def groups(self, path: str) -> tuple[_Group, ...]:
        """The groups to try for `path`, best first. (Router.match inlines this.)"""
        end = path.find("/", 1)  # a route with a static first segment has a second one
        return self.by_first.get(path[1:end], self.rest) if end > 0 else self.rest


class Router:
    """`add` routes, `freeze`, then `match`. The module docstring gives the rules."""

    def __init__(self) -> None:
        self.routes: list[Route] = []  # registration order
        self._names: dict[str, Route] = {}
        self._frozen = False
        # Filled in by freeze(). Until then they are empty, so match() ends in _miss(),
        # which raises "not frozen".
        # path -> request method -> the static routes that fit, best first
        self._static: dict[str, dict[str, tuple[Route, ...]]] = {}
        self._tables: dict[str, _Table] = {}  # request method -> its dynamic routes
        self._fallback = _Table([])  # for any other method: the ANY routes
        self._all = _Table([])  # every dynamic route, to tell 404 from 405

    def add(self, method: str, path: str, handler: Any, name: str | None = None) -> Route:
        """Register a route. ValueError: a bad pattern, a duplicate or a taken name."""
        if self._frozen:
            raise RuntimeError(f"router is frozen (the app is serving): cannot add {method} {path}")
        method = method.upper()
        if not _METHOD.fullmatch(method):
            raise ValueError(f"bad HTTP method {method!r} for route {path!r}")
        route = Route(method, path, handler, name, len(self.routes))
        for other in self.routes:
            if other.method == method and other.path == path:
                raise ValueError(f"duplicate route: {method} {path} already exists")
        if name is not None and name in self._names:
            taken = self._names[name]
            raise ValueError(f"duplicate route name {name!r}: used by {taken!r}")
        self.routes.append(route)
        if name is not None:
            self._names[name] = route
        return route

    def freeze(self) -> None:
        """Compile the routes. Call it once, before serving. After it, `add` raises."""
        if self._frozen:
            return
        self._frozen = True
        static: dict[str, list[Route]] = {}
        dynamic: list[Route] = []
        for route in self.routes:
            if route.regex is None:
                static.setdefault(route.path, []).append(route)
            else:
                dynamic.append(route)
        for path, routes in static.items():
            methods = {route.method for route in routes} | {"ANY"}
            if "GET" in methods:
                methods.add("HEAD")
            table = {m: tuple(_candidates(routes, m)) for m in methods}
            self._static[path] = {m: found for m, found in table.items() if found}
        methods = {route.method for route in self.routes} - {"ANY"}
        if "GET" in methods:
            methods.add("HEAD")
        self._tables = {m: _Table(_candidates(dynamic, m)) for m in methods}
        self._fallback = _Table(_candidates(dynamic, "ANY"))
        self._all = _Table(dynamic)

    @property
    def static_table(self) -> dict[str, dict[str, tuple[Route, ...]]]:
        """``{path: {method: routes best first}}`` for static paths (after `freeze`).

        The app reads it directly for its fast path; ``HEAD`` and ``ANY`` entries are already
        resolved, so ``table[path].get(method)`` is what `match` would find first.
        """
        self._check_frozen()
        return self._static

    def match(self, method: str, path: str) -> Match:
        """Return the best match. Raises NotFound or MethodNotAllowed."""
        # PERF: a static path costs one dict lookup plus a fresh Match. The Match is
        # never shared, because the caller may mutate its params. timeit, best of 7,
        # CPython 3.11 on the 2-core dev box:
        #   static hit 0.34 µs, whether 3 or 503 routes, and for HEAD via GET too;
        #   dynamic, 1 param (/users/:id) 1.7 µs, 2 params 3.5 µs, with 3 or 503 routes;
        #   2 params behind 250 routes in the same bucket: 4.1 µs first, 6.7 µs last;
        #   404 2.8 µs. Of a dynamic match, 0.8 µs goes to building the Match.
        entry = self._static.get(path)
        if entry is not None:
            found = entry.get(method) or entry.get("ANY")
            if found:
                return Match(found[0], {}, ())
        hit = self.lookup(method, path)
        if hit is not None:
            return Match(*hit)
        raise self._miss(method, path)

    def resolve(
        self, method: str, path: str
    ) -> tuple[Route, dict[str, object] | None, tuple[object, ...]]:
        """The app's dispatch: the best route as ``(route, params, values)`` — ``params`` is
        ``None`` for a static route (nothing to set) — or NotFound / MethodNotAllowed.

        The same answer as `match`, without building a Match object: the static table first
        (one dict lookup), then the dynamic routes.
        """
        entry = self._static.get(path)
        if entry is not None:
            found = entry.get(method) or entry.get("ANY")
            if found:
                return found[0], None, ()
        hit = self.lookup(method, path)
        if hit is not None:
            return hit
        raise self._miss(method, path)

    def lookup(
        self, method: str, path: str
    ) -> tuple[Route, dict[str, object], tuple[object, ...]] | None:
        """The best *dynamic* match as ``(route, params, values)``, or None. No Match object
        is built."""
        # PERF: for a single plain parameter, decode it inline and skip Match: /users/:id
        # drops from 50.2k to 45.9k instructions per request in the server's micro-benchmark.
        table = self._tables.get(method, self._fallback)
        # PERF: a path matched before to a route with one plain parameter is looked up (the
        # tables never change once frozen, and such a match is a pure function of the path):
        # /user/42 40.3k -> 34.2k instructions per request (python -m benchmarks.instructions_ab).
        # Bounded in count and path length, emptied when full. A path never seen again pays
        # for remembering it: the lookup alone 0.68 -> 0.83 µs (distinct /user/N, in-process).
        known = table.known.get(path)
        if known is not None:
            route, name, text = known
            return route, {name: text}, (text,)
        end = path.find("/", 1)
        for group in table.by_first.get(path[1:end], table.rest) if end > 0 else table.rest:
            m = group.regex.fullmatch(path)
            if m is not None:
                route, numbers, _ = group.slots[m.lastindex or 0]
                if route._plain:
                    text = m.group(numbers[0])
                    if "%" in text:
                        text = unquote(text)
                    name = route.param_names[0]
                    if len(path) <= _KNOWN_PATH_MAX:
                        if len(table.known) >= _KNOWN_MAX:
                            table.known.clear()
                        table.known[path] = (route, name, text)
                    return route, {name: text}, (text,)
                found = route._match(m, numbers)
                return route, found.params, found.values
        return None

    def iter_matches(self, method: str, path: str) -> Iterator[Match]:
        """Yield every match, best first (for fall-through). Yields nothing if none.

        The first match it yields is the one that `match` returns.
        """
        self._check_frozen()
        entry = self._static.get(path)
        if entry is not None:
            for route in entry.get(method) or entry.get("ANY") or ():
                yield Match(route, {}, ())
        for group in self._tables.get(method, self._fallback).groups(path):
            m = group.regex.fullmatch(path)
            if m is None:
                continue
            route, numbers, position = group.slots[m.lastindex or 0]
            yield route._match(m, numbers)
            # PERF: the routes after the best one are tried one by one. Only a handler
            # that yields pays for this.
            for route in group.routes[position + 1 :]:
                assert route.regex is not None
                m = route.regex.fullmatch(path)
                if m is not None:
                    yield route._match(m, route._numbers)

    def url_for(self, name: str, /, **params: object) -> str:
        """Build the path of the route called `name`, percent-encoding the values.

        `name` is positional-only, so a route may have a parameter called ``name``.
        """
        route = self._names.get(name)
        if route is None:
            known = ", ".join(sorted(self._names)) or "none"
            raise LookupError(f"url_for: no route named {name!r} (known: {known})")
        return route._build(params)

    def _check_frozen(self) -> None:
        if not self._frozen:
            raise RuntimeError("router is not frozen: call freeze() before matching")

    def _miss(self, method: str, path: str) -> Exception:
        """Decide between 404 and 405. This is the error path; it may be slow."""
        self._check_frozen()
        methods: set[str] = set()
        for routes in self._static.get(path, {}).values():
            methods.update(route.method for route in routes)
        for group in self._all.groups(path):
            if group.regex.fullmatch(path) is not None:
                for route in group.routes:
                    assert route.regex is not None
                    if route.regex.fullmatch(path):
                        methods.add(route.method)
        if not methods:
            return NotFound(f"no route for {path}")
        if "GET" in methods:
            methods.add("HEAD")
        return MethodNotAllowed(tuple(sorted(methods)))


def _parse(path: str) -> tuple[_Segment, ...]:
    """Split a pattern into segments. Raises ValueError with the reason if it is bad."""
    if not path.startswith("/"):
        raise ValueError(f"route pattern {path!r} must start with '/'")
    if "*" in path[:-1]:
        raise ValueError(f"route pattern {path!r}: '*' may only be the last character")
    texts = path[1:].split("/")
    segments: list[_Segment] = []
    seen: set[str] = set()
    for i, text in enumerate(texts):
        last = i == len(texts) - 1
        if text.startswith(":"):
            m = _PARAM_SEGMENT.fullmatch(text)
            if m is None:
                raise ValueError(
                    f"route pattern {path!r}: bad parameter {text!r}; "
                    "write :name or :name<conv> (name an identifier)"
                )
            name, conv = m.group(1), m.group(2) or "str"
            if conv not in _CONVERTERS:
                raise ValueError(
                    f"route pattern {path!r}: unknown converter <{conv}>; "
                    f"known: {', '.join(sorted(_CONVERTERS))}"
                )
            if name in seen:
                raise ValueError(f"route pattern {path!r}: parameter {name!r} twice")
            if conv == "path" and not last:
                raise ValueError(f"route pattern {path!r}: :{name}<path> must be the last segment")
            seen.add(name)
            rank = PATH if conv == "path" else PARAM
            segments.append(_Segment(rank, "", name, conv))
        elif text.endswith("*"):
            rank = WILDCARD if text == "*" else SUFFIX
            segments.append(_Segment(rank, text[:-1], "", ""))
        else:
            _refuse_foreign_parameter(path, text)
            segments.append(_Segment(STATIC, text, "", ""))
    return tuple(segments)


#: ``{id}`` (FastAPI, Starlette) and ``<id>``, ``<int:id>`` (Flask): no request can ever match
#: them literally, since clients percent-encode these characters (RFC 3986 §2), so a route
#: written that way would answer 404 in silence.
_FOREIGN_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}|<(?:(\w+):)?(\w+)>")


def _refuse_foreign_parameter(path: str, text: str) -> None:
    m = _FOREIGN_PARAM.fullmatch(text)
    if m is None:
        return
    name = m.group(1) or m.group(4)
    conv = m.group(2) or m.group(3)
    conv = conv if conv in _CONVERTERS and conv != "str" else None
    better = f":{name}<{conv}>" if conv else f":{name}"
    raise ValueError(f"route pattern {path!r}: {text!r} is not a parameter in corkweb; "
                     f"write {path.replace(text, better, 1)!r}")


def _segment_regex(seg: _Segment) -> str:
    if seg.name:
        return f"({_CONVERTERS[seg.conv].regex})"
    if seg.rank == STATIC:
        return re.escape(seg.text)
    return re.escape(seg.text) + ".*"  # SUFFIX or WILDCARD: the rest, possibly empty


def _candidates(routes: list[Route], method: str) -> list[Route]:
    """The routes that fit a request `method`, best first (docstring rules 1 to 4)."""
    ranked = []
    for route in routes:
        if route.method == method:
            preference = 0
        elif method == "HEAD" and route.method == "GET":
            preference = 1
        elif route.method == "ANY":
            preference = 2
        else:
            continue
        ranked.append((route.ranks, preference, route.index, route))
    ranked.sort(key=lambda item: item[:3])
    return [item[3] for item in ranked]


def _format(where: str, seg: _Segment, value: object) -> str:
    """Turn one url_for value into URL text that the converter will accept back."""
    if seg.conv in ("str", "path"):
        text = str(value)
        if not text:
            raise ValueError(f"{where}: parameter {seg.name!r} must not be empty")
        return quote(text, safe="/" if seg.conv == "path" else "")
    text = repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, bool) or not re.fullmatch(_CONVERTERS[seg.conv].regex, text):
        raise ValueError(f"{where}: parameter {seg.name!r}={value!r} is not a valid <{seg.conv}>")
    # Unreserved characters, or '+', which a path may hold as it is: nothing to quote.
    return text
