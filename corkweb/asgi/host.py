"""Hosting a whole ASGI or WSGI application: the handler, interface detection, ``HostedApp``.

:class:`ASGIHandler` is a corkweb handler — ``handler(res, req)`` — that builds the ASGI scope
from corkweb's request and runs the app's call for it (``corkweb.asgi.http`` for HTTP,
``corkweb.asgi.websocket`` for WebSocket upgrades). :class:`HostedApp` is a corkweb ``App`` whose
every request goes to such a handler, so ``corkweb run --interface asgi module:app`` gets the
workers, TLS, access log, limits, proxies and graceful shutdown of any corkweb app.
``App.mount(prefix, app)`` uses the same handler for part of a corkweb app.
"""

from __future__ import annotations

import inspect
from asyncio import get_running_loop
from typing import Any
from urllib.parse import unquote

from ..app import App
from .http import ASGI_INFO, NO_BODY, START, UNREAD, Calls, HTTPCycle
from .lifespan import Lifespan
from .runner import Runner

__all__ = ["ASGIHandler", "HostedApp", "detect_interface", "mount", "INTERFACES"]

INTERFACES = ("auto", "asgi", "wsgi", "corkweb")

_new = object.__new__

#: ``scope["extensions"]``: what this server offers beyond the base spec.
HTTP_EXTENSIONS: dict[str, Any] = {"http.response.pathsend": {}}
WS_EXTENSIONS: dict[str, Any] = {"websocket.http.response": {}}
#: Scope templates an ASGIHandler keeps (one per connection while it lasts).
BASES_MAX = 4096


def _address(addr: Any) -> Any:
    """``(host, port)`` for TCP (IPv6 peers give four fields), ``None`` for a UNIX peer."""
    if addr.__class__ is tuple:
        return addr if len(addr) == 2 else addr[:2]
    return None


def _bound_call(app: Any) -> Any:
    """``app``'s ``__call__`` bound to it when that is a Python function, else ``app``."""
    call = inspect.getattr_static(type(app), "__call__", None)  # a staticmethod stays one
    if inspect.isfunction(call):
        return call.__get__(app, type(app))
    return app


class ASGIHandler:
    """The corkweb handler that serves an ASGI 3 application.

    ``root_path`` is ``scope["root_path"]``. ``mounted=True`` means the request path already
    starts with it (``App.mount``); otherwise it is prefixed to the path, as a proxy that
    strips a prefix expects (``corkweb run --root-path``). ``state`` is the lifespan state.
    """

    def __init__(self, app: Any, *, root_path: str = "", mounted: bool = False,
                 state: dict[str, Any] | None = None, proxies: Any = None,
                 proxy_protocol: bool = False) -> None:
        self.app = app
        #: What a request calls: the app, or for an instance of a class with a Python
        #: ``__call__`` (Starlette, FastAPI, Litestar, Django) that method bound to it.
        #: PERF: called so, the interpreter makes the coroutine without going through the
        #: instance's call slot (~700 instructions per request, callgrind).
        self.call = _bound_call(app)
        self.root_path = root_path.rstrip("/")
        self.prefix = "" if mounted else self.root_path
        self.state = state if state is not None else {}
        #: Whether the client and scheme can come from elsewhere than the socket (trusted
        #: X-Forwarded-*/Forwarded, or a PROXY protocol header): then ask the response.
        self.forwarded = bool(proxies) or proxy_protocol
        self.ws_route: Any = None  # the socket context of its WebSockets, made on first use
        #: Scope templates by socket info (see scope()).
        self.bases: dict[tuple[Any, Any, bool], dict[str, Any]] = {}
        self.calls = Calls()
        self.runner = Runner(self.calls)
        self.loop: Any = None

    def scope(self, res: Any, req: Any, kind: str) -> dict[str, Any]:
        """The scope of ``req`` (``kind`` is ``"http"`` or ``"websocket"``). An HTTP request
        served by :meth:`__call__` gets the same scope built inline there."""
        info = res.get_socket_info()
        if kind == "http" and not self.forwarded:
            base = self.bases.get(info)
            scope = (base if base is not None else self._base(info)).copy()
        else:
            scope = self._base(info, res, kind)
        self._fill(scope, req)
        return scope

    def _fill(self, scope: dict[str, Any], req: Any) -> None:
        """Store the keys of ``scope`` that come from the request itself (the same as
        :meth:`__call__` stores inline)."""
        path = req.path
        prefix = self.prefix
        if prefix:
            path = prefix + path
        # PERF: the template says GET, HTTP/1.1 and no query; a key is stored only when the
        # request differs (a dict store costs ~290 instructions, the test ~60).
        if req.method != "GET":
            scope["method"] = req.method
        if req.version != "1.1":
            scope["http_version"] = req.version
        query = req.query
        if query:
            scope["query_string"] = query.encode("latin-1")
        scope["path"] = unquote(path) if "%" in path else path
        # PERF: the ASCII case skips the error handler lookup (0.1 µs).
        scope["raw_path"] = path.encode("ascii") if path.isascii() else path.encode(
            "utf-8", "surrogateescape")
        scope["headers"] = req.headers
        state = self.state
        if state:
            # A copy per request (the spec): what a request stores stays its own. An app
            # without lifespan state gets none; Starlette's request.state makes its own.
            scope["state"] = state.copy()

    def _base(self, info: tuple[Any, Any, bool], res: Any = None,
              kind: str = "http") -> dict[str, Any]:
        """The keys of a scope that do not change from one request of a connection to the
        next; without ``res``, kept as the template for ``info`` (HTTP, no proxy to ask)."""
        peer, local, tls = info
        client = _address(peer)
        if res is not None and self.forwarded:
            host = res.get_remote_address()
            if client is None or host != client[0]:
                client = (host, 0) if host is not None else None  # the port is not forwarded
            scheme = res.get_scheme()
        else:
            scheme = "https" if tls else "http"
        base = {
            "type": kind,
            "asgi": ASGI_INFO,
            "http_version": "1.1",
            "server": _address(local) if local.__class__ is tuple else (local, None),
            "client": client,
            "scheme": scheme if kind == "http" else ("wss" if scheme == "https" else "ws"),
            "method": "GET",
            "root_path": self.root_path,
            # set per request (present here so that copies have room for them)
            "path": "",
            "raw_path": b"",
            "query_string": b"",
            "headers": (),
            "extensions": HTTP_EXTENSIONS if kind == "http" else WS_EXTENSIONS,
        }
        if res is None:
            bases = self.bases
            if len(bases) >= BASES_MAX:
                bases.clear()  # bounded: past this many connections, made anew
            bases[info] = base
        return base

    def __call__(self, res: Any, req: Any) -> Any:
        if req.upgrade is not None and req.upgrade.lower() == b"websocket":
            from .websocket import serve_websocket

            return serve_websocket(self, res, req)
        # PERF: the cycle made without calling its class (a Python __init__ called from C
        # re-enters the interpreter: ~600 instructions per request, callgrind); its slots
        # set here as HTTPCycle.__init__ sets them.
        cycle = _new(HTTPCycle)
        cycle.res = res
        cycle.req = req
        cycle.phase = START
        cycle.reading = UNREAD if req.has_body else NO_BODY
        cycle.waiter = None
        # PERF: the scope built here rather than by scope() + _fill() (two calls: ~600
        # instructions per request, callgrind); keep the two in step.
        info = res.get_socket_info()
        if self.forwarded:
            scope = self._base(info, res, "http")
        else:
            # PERF: what depends on the connection alone comes from a template made once per
            # socket address pair, copied with its room for the rest: building the 13-key
            # dict costs 4.4k instructions, copying it 0.84k and each key stored 0.29k.
            base = self.bases.get(info)
            if base is None:
                base = self._base(info)
            scope = base.copy()
        path = req.path
        prefix = self.prefix
        if prefix:
            path = prefix + path
        # PERF: the template says GET, HTTP/1.1 and no query; a key is stored only when the
        # request differs (a dict store costs ~290 instructions, the test ~60).
        if req.method != "GET":
            scope["method"] = req.method
        if req.version != "1.1":
            scope["http_version"] = req.version
        query = req.query
        if query:
            scope["query_string"] = query.encode("latin-1")
        scope["path"] = unquote(path) if "%" in path else path
        # PERF: the ASCII case skips the error handler lookup (0.1 µs).
        scope["raw_path"] = path.encode("ascii") if path.isascii() else path.encode(
            "utf-8", "surrogateescape")
        scope["headers"] = req.headers
        state = self.state
        if state:
            # A copy per request (the spec): what a request stores stays its own.
            scope["state"] = state.copy()
        # PERF: read as an attribute, then called (a method lookup finds an instance
        # attribute the slow way: ~150 instructions).
        call = self.call
        coro = call(scope, cycle.receive, cycle.send)
        # PERF: the serving loop, noted by start() (get_running_loop() costs 0.2 µs).
        self.runner.run(self.loop or get_running_loop(), coro, cycle)
        return None

    def start(self) -> None:
        """A start hook of the hosting app: note the loop it serves on."""
        self.loop = get_running_loop()

    async def close(self) -> None:
        """At shutdown, once the calls in flight are done: end the pooled tasks."""
        await self.runner.close()
        self.loop = None  # served again, it may be on another loop


def detect_interface(obj: Any) -> str:
    """``"corkweb"``, ``"asgi"`` or ``"wsgi"`` for ``obj``; ``ValueError`` when unsure."""
    if isinstance(obj, App):
        return "corkweb"
    if not callable(obj):
        raise ValueError(f"{obj!r} is not callable: not an ASGI or WSGI application")
    # The bound __call__ of an instance is what the server calls.
    call: Any = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(
        obj).__call__.__get__(obj)
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(obj):
        return "asgi"
    if callable(getattr(obj, "wsgi_app", None)):
        return "wsgi"  # Flask and friends
    try:
        params = [p for p in inspect.signature(call).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params]
    if len(params) == 2 and names[0] in ("environ", "env", "e") or names[:2] == [
            "environ", "start_response"]:
        return "wsgi"
    raise ValueError(
        f"cannot tell whether {obj!r} is an ASGI or a WSGI application (its __call__ is "
        f"neither a coroutine function nor (environ, start_response)); name it with "
        f"--interface asgi or --interface wsgi")


def make_handler(obj: Any, interface: str, *, root_path: str = "", mounted: bool = False,
                 state: dict[str, Any] | None = None, proxies: Any = None,
                 proxy_protocol: bool = False, threads: int | None = None) -> Any:
    """The corkweb handler serving ``obj`` as ``interface`` (``asgi`` or ``wsgi``): an
    :class:`ASGIHandler` or a :class:`corkweb.asgi.wsgi.WSGIHandler`."""
    if interface == "wsgi":
        from .wsgi import WSGIHandler

        return WSGIHandler(obj, root_path=root_path, mounted=mounted, proxies=proxies,
                           proxy_protocol=proxy_protocol, threads=threads)
    return ASGIHandler(obj, root_path=root_path, mounted=mounted, state=state,
                       proxies=proxies, proxy_protocol=proxy_protocol)


class HostedApp(App):
    """A corkweb ``App`` that hands every request to an ASGI or WSGI application.

    ``HostedApp(asgi_app).run(port=8000)``, or ``corkweb run --interface asgi module:app``.
    ``interface``: ``"auto"`` (detect), ``"asgi"`` or ``"wsgi"``; ``lifespan``: ``"auto"``,
    ``"on"``, ``"off"`` (ASGI only); ``root_path`` as in ASGI; ``threads``: the WSGI pool size.
    Other keyword arguments are ``App``'s (``limits``, ``trusted_proxies``, ...).
    """

    def __init__(self, target: Any, *, interface: str = "auto", root_path: str = "",
                 lifespan: str = "auto", threads: int | None = None, **options: Any) -> None:
        options.setdefault("templates", None)
        super().__init__(**options)
        if interface == "auto":
            interface = detect_interface(target)
        if interface not in ("asgi", "wsgi"):
            raise ValueError(f"HostedApp serves ASGI or WSGI applications, not {interface!r}")
        self.target = target
        self.interface = interface
        self.lifespan: Lifespan | None = None
        if interface == "asgi":
            self.lifespan = Lifespan(target, lifespan)
            self.pubsub  # noqa: B018 - a hub makes the server accept WebSocket upgrades
        self.hosted: Any = make_handler(
            target, interface, root_path=root_path, proxies=self.trusted_proxies,
            proxy_protocol=self.proxy_protocol, threads=threads,
            state=self.lifespan.state if self.lifespan else None)
        if self.lifespan is not None:
            self.on_start(self.lifespan.startup)
        if interface == "asgi":
            self.on_start(self.hosted.start)
        self.on_shutdown(self._let_calls_finish)
        self.on_shutdown(self.hosted.close)
        if self.lifespan is not None:
            self.on_shutdown(self.lifespan.shutdown)

    async def _let_calls_finish(self) -> None:
        """After the drain, before the lifespan shutdown: the app calls still running."""
        await self.hosted.calls.wait(self.limits.drain_timeout)

    def __repr__(self) -> str:
        return f"<HostedApp {self.interface} {self.target!r}>"

    def handle(self, res: Any, req: Any) -> Any:
        return self.hosted(res, req)

    def freeze(self) -> None:
        super().freeze()
        # PERF: the server calls the hosted handler directly, not through App.handle's
        # router (no route table to look at: every path belongs to the hosted app), and as
        # its bound __call__, not through the instance's call slot (~700 instructions per
        # request less, callgrind).
        self.handle = self.hosted.__call__  # type: ignore[method-assign]


def mount(group: Any, prefix: str, target: Any, *, interface: str = "auto",
          lifespan: str = "auto", threads: int | None = None) -> Any:
    """``app.mount(prefix, target)``: serve an ASGI or WSGI app under ``prefix`` of a corkweb
    app (``group``: the app or a route group, whose middleware applies). Returns the handler.

    The hosted app sees ``prefix`` as ``root_path`` (``SCRIPT_NAME``) and the full path, as
    ASGI frameworks expect behind a mount; its lifespan runs with the corkweb app's, and
    WebSocket upgrades under the prefix reach it.
    """
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"mount prefix must start with '/' and not end with it: {prefix!r}")
    if interface == "auto":
        interface = detect_interface(target)
    if interface not in ("asgi", "wsgi"):
        raise ValueError(f"mount() takes an ASGI or WSGI application, not {interface!r} "
                         f"(a corkweb route group is app.router(prefix))")
    app = group.app
    life = Lifespan(target, lifespan) if interface == "asgi" else None
    full = group.prefix + prefix
    handler: Any = make_handler(target, interface, root_path=full, mounted=True,
                                proxies=app.trusted_proxies, proxy_protocol=app.proxy_protocol,
                                threads=threads, state=life.state if life is not None else None)

    async def let_calls_finish() -> None:
        await handler.calls.wait(app.limits.drain_timeout)

    if life is not None:
        app.on_start(life.startup)
        app.on_start(handler.start)
        app.pubsub  # noqa: B018 - a hub makes the server accept WebSocket upgrades
    app.on_shutdown(let_calls_finish)
    app.on_shutdown(handler.close)
    if life is not None:
        app.on_shutdown(life.shutdown)
    group.any(prefix, handler)
    group.any(prefix + "/*", handler)
    return handler
