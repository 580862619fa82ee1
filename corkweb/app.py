"""``App``: routes, route groups, middleware, error handlers, lifespan hooks, and running.

Everything is registered first and frozen when the app starts serving: the router compiles
its patterns, each route's middleware chain is composed into one callable, and the response
options are built — all once. Registering afterwards raises :class:`AppFrozenError`.

The server layer sees the app only as ``app.handle(res, req)`` and the error hook.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import compat, errors, typed
from .callsite import describe, registrations_after, user_frame
from .compat import SocketifyApp
from .config import ENV_PROXY_PROTOCOL, debug_from_env, env_flag
from .error_handling import ErrorHandlers
from .hosts import TrustedHosts, origin_of
from .importing import refuse_run
from .json import make_dumps
from .middleware import chain_is_async, compose
from .proxy import TrustedProxies
from .pubsub import PubSub
from .pubsub.redis import hub_from_setting
from .request import Request
from .response import DONE, Response, ResponseOptions
from .routegroup import RouteGroup
from .routing import Router
from .templating import Jinja2Templates, load_builtin_pages, make_renderers, resolve_folders
from .websocket import WebSocketRoute, publish_frame
from .wire.limits import Limits

if TYPE_CHECKING:  # the server is imported when the app starts serving, not at load time
    from .server.runner import Runner, ServedApp

__all__ = ["App", "RouteGroup"]

log = logging.getLogger("corkweb.error")

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "CONNECT", "TRACE")


@dataclass
class _RouteSpec:
    """A registration, kept as data until the app freezes."""

    method: str
    path: str
    handler: Callable[..., Any]
    name: str | None
    middlewares: tuple[Callable[..., Any], ...] = field(default=())
    options: dict[str, Any] = field(default_factory=dict)  # status, tags, ... (typed.Api)


class App(SocketifyApp, RouteGroup):
    """A corkweb application.

    ``App(templates="templates", limits=Limits(...), json_option=..., json_default=...,
    debug=False)``. Register routes with the decorators (``@app.get("/")``) or directly
    (``app.get("/", handler)``), then ``app.run(port=3000)``.

    ``templates``: a folder (or a list) of Jinja2 templates for ``res.render``; a relative one
    is found next to the module creating the App, then in the current directory. The default
    ``"templates"`` may be missing; ``None`` means no templates (docs/templates.md).

    ``title`` and ``version`` fill the OpenAPI document's ``info`` (``app.openapi()``);
    ``openapi="/openapi.json"`` serves it and ``docs="/docs"`` an interactive page for it
    (docs/openapi.md). Both are off unless given.
    """

    def __init__(
        self,
        options: compat.AppOptions | Any = None,
        *args: Any,  # socketify's pool sizes, lifespan, ... (compat.check_app_options)
        templates: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = "templates",
        limits: Limits | None = None,
        json_option: int | None = None,
        json_default: Callable[[Any], Any] | None = None,
        debug: bool | None = None,
        pubsub: Any = None,
        trusted_proxies: Iterable[str] | str | None = None,
        proxy_protocol: bool = False,
        server_name: str | None = None,
        trusted_hosts: Iterable[str] | str | None = None,
        title: str = "corkweb", version: str = "0.1.0", openapi: str | None = None,
        docs: str | None = None, **knobs: Any,
    ) -> None:
        super().__init__(self, "", ())
        self._ssl, self._hooks_run = compat.check_app_options(options, args, knobs)
        # Debug mode is on if any switch says so: debug=True, CORKWEB_DEBUG=1, corkweb run
        # --debug (docs/debugging.md).
        self.debug = bool(debug) or debug_from_env()
        self.limits = limits or Limits()
        # Templates: relative folders are found next to the creating module.
        caller = sys._getframe(1).f_globals.get("__file__")
        self._templates_dir = resolve_folders(templates, caller)
        self._template_engine: Any = None
        self._json_dumps = make_dumps(json_option, json_default)
        self._specs: list[_RouteSpec] = []
        self._global_mws: list[Callable[..., Any]] = []
        self._errors = ErrorHandlers()
        self._on_start: list[Callable[[], Any]] = []
        self._on_shutdown: list[Callable[[], Any]] = []
        self._listens: list[tuple[dict[str, Any], Callable[..., Any] | None]] = []
        self._router = Router()
        self._static: dict[str, dict[str, Any]] = {}
        self._frozen = False
        self._options: ResponseOptions | None = None
        self._runner: Runner | None = None
        self.api = typed.Api(self, title, version, openapi, docs, json_option, json_default)
        # Scaling out (docs/scaling.md): pub/sub across processes, proxies.
        # pubsub: "redis://host:port/db" or a Backend (default CORKWEB_PUBSUB, else local);
        # trusted_proxies: addresses/CIDRs whose X-Forwarded-* are believed
        # (CORKWEB_TRUSTED_PROXIES); proxy_protocol: connections start with a PROXY header.
        self._pubsub_hub = hub_from_setting(pubsub)
        self.trusted_proxies = TrustedProxies.from_setting(trusted_proxies)
        self.proxy_protocol = proxy_protocol or env_flag(ENV_PROXY_PROTOCOL)
        # Host safety (docs/deployment.md): the Host values answered (400 for others), and
        # the origin of absolute URLs, never taken from the request.
        self.trusted_hosts = TrustedHosts.from_setting(trusted_hosts)
        self.server_origin = origin_of(server_name)

    def __repr__(self) -> str:
        return f"<App routes={len(self._specs)} frozen={self._frozen}>"

    # -- registration ----------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._frozen:
            if self.server is None and self._ran_from is not None:
                # Code below app.run() runs only once the server has stopped.
                raise errors.AppFrozenError(
                    f"cannot {what}: app.run() ({self._ran_from}) already served and returned; "
                    f"code after app.run() runs only once the server stops, so register "
                    f"everything first and call app.run() last")
            raise errors.AppFrozenError(
                f"cannot {what}: the app is already serving (register everything before run)"
            )

    def route(self, method: str, path: str, handler: Callable[..., Any] | None = None, *,
              name: str | None = None, middlewares: Iterable[Callable[..., Any]] = (),
              **options: Any) -> Any:
        """Register ``handler`` for ``method`` and ``path``; a decorator when ``handler`` is
        omitted. Returns the handler unchanged; ``options``: docs/typed-handlers.md."""
        self._check_open(f"add route {method} {path}")
        method = method.upper()
        if method != "ANY" and method not in METHODS:
            raise ValueError(f"unknown HTTP method {method!r}")
        mws = tuple(middlewares)
        options = typed.check_options(method, path, options)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(fn):
                raise TypeError(f"route handler for {method} {path} is not callable: {fn!r}")
            self._check_open(f"add route {method} {path}")
            spec = _RouteSpec(method, path, fn, name, mws, options)
            # Check the pattern now, where the mistake is, rather than at start-up.
            try:
                self._router.add(method, path, fn, name)
            except ValueError:
                if not self._static_gives_way(spec):  # app.static beside an explicit route
                    raise
                return fn
            self._specs.append(spec)
            return fn

        if handler is None:
            return register
        return register(handler)

    def use(self, mw: Callable[..., Any]) -> Callable[..., Any]:
        """Add a middleware that runs before every route (in the order added)."""
        self._check_open("add middleware")
        if not callable(mw):
            raise TypeError(f"middleware is not callable: {mw!r}")
        self._global_mws.append(mw)
        return mw

    middleware = use

    def on_error(self, key: Any = None, handler: Callable[..., Any] | None = None) -> Any:
        """Register ``handler(error, res, req)`` for all errors, a class, or a status.

        ``@app.on_error``, ``@app.on_error(ValueError)``, ``@app.on_error(404)``,
        ``app.on_error(fn)``, ``app.on_error(KeyError, fn)``.
        """
        self._check_open("add an error handler")
        if handler is not None:
            self._errors.add(key, handler)
            return handler
        if callable(key) and not (isinstance(key, type) and issubclass(key, BaseException)):
            self._errors.add(None, key)
            return key

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._errors.add(key, fn)
            return fn

        return register

    def observe_errors(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``fn(error, res, req)`` for every error raised while handling a request,
        before it is answered (by ``on_error`` handlers or the default page): for tracing and
        error reporting. It cannot change the answer; if it raises, that is logged."""
        self._check_open("add an error observer")
        self._errors.observers.append(fn)
        return fn

    def set_error_handler(self, handler: Callable[..., Any]) -> None:
        """socketify's name for ``app.on_error(handler)``."""
        self.on_error(None, handler)

    def on_start(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Run ``fn()`` (sync or async) once per worker before it accepts connections."""
        self._check_open("add an on_start hook")
        if self._hooks_run:  # socketify's App(lifespan=False): the app's hooks do not run
            self._on_start.append(fn)
        return fn

    def on_shutdown(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Run ``fn()`` (sync or async) once per worker after it drained its connections."""
        self._check_open("add an on_shutdown hook")
        if self._hooks_run:
            self._on_shutdown.append(fn)
        return fn

    # -- templates (see templating.py) ------------------------------------------------------

    def template(self, engine: Any) -> None:
        """Use ``engine`` for ``res.render``: any object with ``render(name, **context) -> str``
        (and optionally ``render_string``, ``render_async`` with ``is_async``), a
        :class:`corkweb.templating.Jinja2Templates`, or a :class:`jinja2.Environment`."""
        self._check_open("set the template engine")
        if not callable(getattr(engine, "render", None)):
            if not callable(getattr(engine, "get_template", None)):
                raise TypeError("a template engine needs a render(name, **context) method")
            engine = Jinja2Templates.from_env(engine)  # a jinja2.Environment
        self._template_engine = engine

    @property
    def template_env(self) -> Any:
        """The Jinja2 environment, for filters, globals and tests (``templates`` folder or
        ``app.template(...)``); created on first use."""
        engine = self._engine()
        if engine is None:
            raise RuntimeError("no templates folder was found: create the App with "
                               "templates=<folder> or call app.template(engine)")
        env = getattr(engine, "env", None)
        if env is None:
            raise RuntimeError(f"the template engine {engine!r} has no Jinja2 environment")
        return env

    def _engine(self) -> Any:
        if self._template_engine is None and self._templates_dir is not None:
            self._template_engine = Jinja2Templates(self._templates_dir,
                                                    auto_reload=self.debug)
        return self._template_engine

    def static_url(self, path: str) -> str:
        """The URL of ``path`` in the first ``app.static(prefix, folder)`` mount, e.g.
        ``static_url("site.css") == "/static/site.css"`` (also a template global)."""
        prefix = self._static_prefix
        if prefix is None:
            from .static import StaticFiles

            for spec in self._specs:
                if isinstance(spec.handler, StaticFiles):
                    prefix = spec.path.rsplit("/", 1)[0]
                    break
            else:
                raise LookupError("static_url(): no static files are mounted (app.static)")
            if self._frozen:
                self._static_prefix = prefix
        return prefix + "/" + quote(path.lstrip("/"), safe="/:@!$&'()*+,;=?#~")

    _static_prefix: str | None = None

    # -- end of the templates block ------------------------------------------------------------

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the routes (docs/openapi.md)."""
        return self.api.document(self._specs, frozen=self._frozen)

    def url_for(self, name: str, /, _external: bool = False, **params: Any) -> str:
        """The path of the route registered with ``name``, parameters filled in;
        ``_external=True`` prefixes ``App(server_name=...)``'s origin (never the request's
        Host header), and raises ``RuntimeError`` when no server name is set."""
        path = self._router.url_for(name, **params)
        if not _external:
            return path
        if self.server_origin is None:
            raise RuntimeError(f"url_for({name!r}, _external=True) needs "
                               "App(server_name='example.com') or CORKWEB_SERVER_NAME: an "
                               "absolute URL is never built from the request's Host header")
        return self.server_origin + path

    @property
    def routes(self) -> list[tuple[str, str, Callable[..., Any], str | None]]:
        """The routes in registration order: ``(method, path, handler, name)``."""
        return [(s.method, s.path, s.handler, s.name) for s in self._specs]

    # -- freezing and dispatch ---------------------------------------------------------------

    def freeze(self) -> None:
        """Compile routes and middleware chains; afterwards the app cannot change."""
        if self._frozen:
            return
        self._errors.debug = self.debug
        global_mws = tuple(self._global_mws)
        self._router = router = Router()
        entries = []
        for spec in self._specs:
            handler = self.api.wrap(spec)  # a typed handler becomes a (res, req) one, once
            mws = global_mws + spec.middlewares
            entry = _Entry(compose(mws, handler), chain_is_async(mws, handler),
                           spec.options.get("status") or 200)
            entry.is_ws = isinstance(getattr(spec.handler, "__self__", None), WebSocketRoute)
            entries.append((spec, entry))
            router.add(spec.method, spec.path, entry, spec.name)
        router.freeze()
        self._static = router.static_table
        compat.upgrades_reach_websockets(router, entries)
        # Templates: bind the engine and the helpers once; compile error pages.
        engine = self._engine()
        renderers = None
        if engine is not None:
            renderers = make_renderers(engine, {"url_for": self.url_for,
                                                "static_url": self.static_url})
        load_builtin_pages()
        self._options = ResponseOptions(
            json_dumps=self._json_dumps, debug=self.debug,
            render=renderers.render if renderers else None,
            render_async=renderers.render if renderers and renderers.is_async else None,
            render_string=renderers.render_string if renderers else None,
            json_loads=self._json_loads,
        )
        self._options.app = self
        self._frozen = True

    def handle(self, res: Any, req: Any) -> Any:
        """The server's handler: route ``req``, run its chain, fall through on ``set_yield``."""
        # PERF: the router's static table read here first (Router.resolve does the same):
        # a call less for a static path, 470 instructions per request (plaintext 38,824
        # against 39,291, python -m benchmarks.instructions).
        path = req.path
        method = req.method
        route = None
        table = self._static.get(path)
        if table is not None:
            found = table.get(method) or table.get("ANY")
            if found is not None:
                route = found[0]
        if route is None:
            # PERF: the dynamic routes alone; Router.resolve reads the static table again,
            # which cost /user/:id 670 instructions per request (49,954 before it, 50,627
            # with it; python -m benchmarks.instructions_ab --workloads param).
            hit = self._router.lookup(method, path)
            if hit is None:
                req.matched = None  # req.route: nothing matched
                self._router.resolve(method, path)  # raises NotFound or MethodNotAllowed
                raise AssertionError("lookup and resolve disagree")  # pragma: no cover
            route, req.route_params, req.route_values = hit
            req.matched = route  # req.route reads the pattern only when asked
        entry = route.handler
        result = entry.call(res, req)
        if entry.is_async:
            return self._async_route(result, res, req, route)
        # PERF: the phase first: most handlers have answered, and then the flag (a class-level
        # default, read through the type) is not read: ~200 instructions a request.
        if res.phase is not DONE and req.yield_requested and not res.has_responded():
            return self._fall_through(res, req, route)
        if result is not None and result is not res:  # PERF: +27 instructions (callgrind)
            return self.api.returned(result, res, entry.status)
        return result

    async def _async_route(self, coro: Any, res: Any, req: Any, route: Any) -> Any:
        result = await coro
        if result is not None and result is not res:
            result = self.api.returned(result, res, route.handler.status)
        if req.yield_requested and not res.has_responded():
            result = self._fall_through(res, req, route)
            if asyncio.iscoroutine(result):
                result = await result
        return result

    def _fall_through(self, res: Any, req: Any, after: Any) -> Any:
        """``req.set_yield(True)``: try the next matching routes in priority order."""
        seen = False
        for match in self._router.iter_matches(req.method, req.path):
            if not seen:
                seen = match.route is after
                continue
            req.yield_requested = False
            req.set_match(match.params, match.values, match.route)
            entry = match.route.handler
            result = entry.call(res, req)
            if entry.is_async:
                return self._async_route(result, res, req, match.route)
            if not req.yield_requested or res.has_responded():
                return result
        raise errors.NotFound(f"no route for {req.path}")

    # -- running ------------------------------------------------------------------------------

    def listen(self, port_or_options: Any = None, handler: Callable[..., Any] | None = None,
               ) -> App:
        """Record a socket to listen on when ``run()`` starts (socketify's call form).

        ``port_or_options``: a port, ``None`` (any free port), an ``AppListenOptions`` or a dict
        (``port``, ``host``, ``uds``/``domain``); ``handler(config)`` gets an
        ``AppListenOptions`` of the bound address once listening (errors in it are logged).
        """
        self._listens.append((compat.listen_spec(port_or_options),
                              compat.listen_handler(handler) if handler else None))
        return self

    def _runner_for(self) -> Runner:
        if self._runner is None:
            from .server.runner import Runner

            self._runner = Runner(self.serving, self.limits)
        return self._runner

    def serving(self) -> ServedApp:
        """What a server needs of this app (``corkweb.server.runner.ServedApp``): the handler,
        the error hook, the request/response classes and options, the lifespan hooks. The app
        freezes; called each time a server is made (``run``, ``start``, ``corkweb.testing``)."""
        from .server.runner import ServedApp
        from .server.websocket import websocket_upgrade

        self.freeze()
        if not self._prepared:
            self._prepared = True
            self._scale_out()
            self._on_shutdown.insert(0, self._drain_background)
        handler: Callable[[Any, Any], Any] = self.handle
        if self.trusted_hosts is not None:  # free for apps that do not set it
            handler = self.trusted_hosts.guard(handler)
        return ServedApp(
            handler, error_handler=self._errors, options=self._options, limits=self.limits,
            request_class=Request, response_class=Response,
            upgrade_handler=websocket_upgrade if self._pubsub_hub is not None else None,
            on_start=self._on_start, on_shutdown=self._on_shutdown,
            proxy_protocol=self.proxy_protocol, trusted_proxies=self.trusted_proxies)

    @property
    def server(self) -> Any:
        """The ``corkweb.server.serve.Server`` while the app serves, else ``None``."""
        return self._runner.server if self._runner is not None else None

    _prepared = False
    #: Where ``app.run()`` was called (``app.py:12``) once it served, for the frozen error.
    _ran_from: str | None = None

    async def _drain_background(self) -> None:
        """Wait for ``res.background`` tasks within what the drain timeout has left."""
        from .background import drain

        left = self.limits.drain_timeout
        deadline = self._runner.drain_deadline if self._runner is not None else None
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
        await drain(left)

    def _scale_out(self) -> None:
        """Run a cross-process pub/sub backend with the lifespan (connected before
        the app's start hooks, closed after its shutdown hooks); apply the proxy settings."""
        backend = self._pubsub_hub.backend if self._pubsub_hub is not None else None
        if callable(getattr(backend, "start", None)):
            self._on_start.insert(0, backend.start)  # type: ignore[union-attr]
            self._on_shutdown.append(backend.stop)  # type: ignore[union-attr]
        assert self._options is not None
        self._options.proxies = self.trusted_proxies

    # -- WebSocket --------------------------------------------------------------------------

    _pubsub_hub: PubSub | None = None

    @property
    def pubsub(self) -> PubSub:
        """The topics of this process (``PubSub(backend)`` can be assigned before serving)."""
        if self._pubsub_hub is None:
            self._pubsub_hub = PubSub()
        return self._pubsub_hub

    @pubsub.setter
    def pubsub(self, hub: PubSub) -> None:
        self._check_open("replace the pub/sub hub")
        self._pubsub_hub = hub

    def _add_ws(self, path: str, behavior: dict[str, Any] | None,
                middlewares: Iterable[Callable[..., Any]] = ()) -> WebSocketRoute:
        self._check_open(f"add WebSocket route {path}")
        route = WebSocketRoute(path, behavior, self.pubsub, self._json_dumps)
        # A GET route like any other: parameters, groups and middleware apply to it.
        self.route("GET", path, route.handle, middlewares=middlewares)
        return route

    def publish(self, topic: str, message: Any, opcode: int | None = None,
                compress: bool = False) -> bool:
        """Send ``message`` to every subscriber of ``topic``; the frame is built once."""
        return self.pubsub.publish(topic, publish_frame(self._json_dumps, message, opcode)) > 0

    def num_subscribers(self, topic: str) -> int:
        """Subscribers of ``topic`` in this process."""
        return self.pubsub.num_subscribers(topic)

    def run(self, host: str | None = None, port: int | None = None, *, uds: str | None = None,
            ssl: Any = None, workers: int = 1, reload: bool = False,
            reload_dirs: Iterable[str] = (), access_log: bool | str = False,
            reuse_port: bool | None = None, backlog: int = 2048,
            worker_timeout: float | None = None) -> None:
        """Serve until SIGINT or SIGTERM, then drain and return.

        With no arguments, the sockets given to ``listen()`` are used, else port 3000 on
        127.0.0.1. ``ssl`` is an ``ssl.SSLContext`` (see ``corkweb.server.tls``).

        ``workers=N`` (N > 1) or ``reload=True`` turn this process into a supervisor that runs
        the same command N times as worker processes (``docs/deployment.md``): the code before
        ``app.run()`` runs again in each worker. ``access_log`` is ``True`` (default format) or
        a format string for the ``corkweb.access`` logger. A worker whose event loop sends no
        heartbeat for ``worker_timeout`` seconds is killed and replaced (0: never; default 30 s,
        off with ``reload``). ``app.close()`` stops as a signal would (see server/forks.py
        for ``reuse_port`` in one process).
        """
        refuse_run()  # under `corkweb run`, the command serves: not the module's own call
        if not logging.getLogger().handlers and not logging.getLogger("corkweb").handlers:
            # `python app.py`: log as `corkweb run` does, unless the program set logging up.
            from .server.access_log import configure_logging

            configure_logging("info", bool(access_log))
        listens = list(self._listens)
        if host is not None or port is not None or uds is not None or not listens:
            opts: dict[str, Any] = {"uds": uds} if uds else {
                "host": host or "127.0.0.1", "port": 3000 if port is None else port}
            listens.append((opts, None))
        caller = user_frame(2)

        def warn_late_registrations() -> None:
            late = registrations_after(caller)
            if late:
                log.warning("%s: app.run() blocks while it serves, so what is registered below "
                            "it (line%s %s) does not exist until it returns: call app.run() "
                            "last", describe(caller), "s" if len(late) > 1 else "",
                            ", ".join(map(str, late)))

        try:
            self._runner_for().run(
                listens, ssl=self._ssl_context(ssl), workers=workers, reload=reload,
                reload_dirs=reload_dirs, access_log=access_log, reuse_port=reuse_port,
                backlog=backlog, worker_timeout=worker_timeout,
                on_serve=warn_late_registrations, stop=self._stop_event())
        finally:
            if self._frozen:  # it served (a supervisor never freezes the app)
                self._ran_from = describe(caller)
        self._after_run()  # socketify's app.close() and fork pattern (compat.py)

    async def start(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> list[Any]:
        """Start serving on the running loop (for embedding and tests); see ``stop``."""
        return await self._runner_for().start(host, port, **kwargs)

    async def stop(self, timeout: float | None = None) -> None:
        """Drain and stop what ``start`` started, then run the shutdown hooks. The app can
        then be served again, by a new server."""
        await self._runner_for().stop(timeout)


class _Entry:
    """What the router stores per route: the composed chain."""

    __slots__ = ("call", "is_async", "status", "is_ws")

    def __init__(self, call: Callable[[Any, Any], Any], is_async: bool, status: int) -> None:
        self.call = call
        self.is_async = is_async
        self.status = status  # of a value the handler returns
        self.is_ws = False  # a WebSocket route's (upgrade requests look for it first)
