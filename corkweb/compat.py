"""socketify.py's remaining names, so that its programs run on corkweb with only the import
changed (``docs/porting-from-socketify.md`` maps every name).

* :class:`AppListenOptions` — what ``app.listen(...)`` accepts and what a listen handler
  receives (``config.port``, ``config.host``, ``config.domain``; ``config["port"]`` still works
  for corkweb code written against the dict it used to receive).
* :class:`AppOptions` — socketify's TLS settings, turned into an ``ssl.SSLContext`` by
  :func:`corkweb.server.tls.make_ssl_context` when the app starts.
* :class:`MiddlewareRouter` — ``MiddlewareRouter(app, *middlewares)``: a route group without
  a prefix.
* :class:`Loop` — what ``app.loop`` (and ``res.app.loop``) is: socketify's loop methods on
  top of the asyncio loop that serves the app.
* :func:`sendfile` — ``await sendfile(res, req, path)``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# Imported now, not when serving: its fork hook must be in place before the program forks.
from .server.forks import fork_child

if TYPE_CHECKING:
    import ssl

    from .app import App

log = logging.getLogger("corkweb.error")

__all__ = ["AppListenOptions", "AppOptions", "MiddlewareRouter", "Loop", "sendfile",
           "listen_spec", "listen_handler", "call_listen_handler", "check_app_options",
           "upgrades_reach_websockets",
           "SocketifyApp"]


@dataclass
class AppListenOptions:
    """Where to listen: ``port`` and ``host``, or ``domain`` (a UNIX socket path).

    ``app.listen(AppListenOptions(port=3000, host="0.0.0.0"))``; a listen handler receives
    one with the address actually bound (``port`` is the real port when 0 was asked).
    ``options`` is socketify's listen flag word; corkweb accepts 0 only.
    """

    port: int = 0
    host: str | None = None
    options: int = 0
    domain: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not (
                0 <= self.port <= 65535):
            raise ValueError(f"AppListenOptions: port must be an int in 0..65535, "
                             f"got {self.port!r}")
        if self.host is not None and not isinstance(self.host, str):
            raise ValueError(f"AppListenOptions: host must be a str, got {self.host!r}")
        if self.domain is not None and not isinstance(self.domain, str):
            raise ValueError(f"AppListenOptions: domain must be a str (a UNIX socket path), "
                             f"got {self.domain!r}")
        if self.options != 0:
            raise ValueError(f"AppListenOptions: options={self.options!r} is a uSockets flag "
                             f"corkweb does not have; leave it 0")
        if self.domain and (self.host or self.port):
            raise ValueError("AppListenOptions: domain (a UNIX socket) excludes host and port")

    # The dict form corkweb's listen handlers received before: config["port"], config["uds"].
    def __getitem__(self, key: str) -> Any:
        if key == "uds":
            key = "domain"
        if key not in ("port", "host", "domain", "options"):
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            value = self[key]
        except KeyError:
            return default
        return default if value is None else value


def listen_spec(port_or_options: Any) -> dict[str, Any]:
    """``app.listen``'s first argument as the keyword arguments of ``Server.start``."""
    if port_or_options is None or (isinstance(port_or_options, int)
                                   and not isinstance(port_or_options, bool)):
        return {"host": "127.0.0.1", "port": port_or_options or 0}
    if isinstance(port_or_options, AppListenOptions):
        if port_or_options.domain:
            return {"uds": port_or_options.domain}
        # corkweb binds the loopback interface unless told otherwise (socketify: all of them).
        return {"host": port_or_options.host or "127.0.0.1", "port": port_or_options.port}
    if isinstance(port_or_options, dict):
        opts = dict(port_or_options)
        if "domain" in opts:
            opts["uds"] = opts.pop("domain")
        unknown = set(opts) - {"host", "port", "uds", "options"}
        if unknown:
            raise TypeError(f"listen(): unknown keys {sorted(unknown)} (known: host, port, "
                            f"uds or domain)")
        if opts.pop("options", 0):
            raise ValueError("listen(): 'options' flags are not supported; leave them 0")
        if not opts.get("uds"):
            opts.pop("uds", None)
            opts.setdefault("host", "127.0.0.1")
        return opts
    raise TypeError(f"listen() takes a port, None, an AppListenOptions or a dict, "
                    f"got {port_or_options!r}")


# socketify's App(options, request_response_factory_max_items, websocket_factory_max_items,
# task_factory_max_items, lifespan, idle_relaxation_time): accepted so its programs run.
# corkweb has no object pools to size and no idle polling to relax; only lifespan counts.
_SOCKETIFY_KNOBS = ("request_response_factory_max_items", "websocket_factory_max_items",
                    "task_factory_max_items", "lifespan", "idle_relaxation_time")


def check_app_options(options: Any, args: tuple[Any, ...],
                      knobs: dict[str, Any]) -> tuple[Any, bool]:
    """``App(options, *args, **knobs)``'s socketify part: returns ``(ssl, lifespan)``.

    ``options`` is an :class:`AppOptions`, an ``ssl.SSLContext`` or ``None``; ``args`` and
    ``knobs`` are socketify's other parameters, by position or by name."""
    if options is not None and not isinstance(options, AppOptions) and not callable(
            getattr(options, "wrap_socket", None)):
        raise TypeError(f"App(options): an AppOptions or an ssl.SSLContext, got {options!r}")
    if len(args) > len(_SOCKETIFY_KNOBS):
        raise TypeError(f"App() takes at most {len(_SOCKETIFY_KNOBS) + 1} positional "
                        f"arguments ({len(args) + 1} given)")
    unknown = sorted(set(knobs) - set(_SOCKETIFY_KNOBS))
    if unknown:
        raise TypeError(f"App() got an unexpected keyword argument {unknown[0]!r}")
    settings = dict(zip(_SOCKETIFY_KNOBS, args, strict=False))
    for name, value in knobs.items():
        if name in settings:
            raise TypeError(f"App() got multiple values for argument {name!r}")
        settings[name] = value
    return options, bool(settings.get("lifespan", True))


def upgrades_reach_websockets(router: Any, entries: list[tuple[Any, Any]]) -> None:
    """At freeze: an upgrade request goes to a matching WebSocket route even where a more
    specific HTTP route matches too (uWebSockets gives upgrade handlers priority, so
    socketify's ``app.ws("/*")`` beside ``app.any("/")`` upgrades on ``/``).

    Only the HTTP routes that could take such a request get the check (a static path a
    WebSocket route also matches; any dynamic GET route when a WebSocket route is dynamic):
    # PERF: the others, and apps without WebSocket routes, pay nothing per request.
    """
    ws = [spec.path for spec, entry in entries if entry.is_ws]
    if not ws:
        return
    ws_dynamic = any(":" in path or "*" in path for path in ws)
    ws_async = any(entry.is_async for _, entry in entries if entry.is_ws)
    for spec, entry in entries:
        if entry.is_ws or spec.method not in ("GET", "ANY"):
            continue
        if ":" in spec.path or "*" in spec.path:
            shadows = ws_dynamic
        else:
            shadows = any(m.route.handler.is_ws for m in router.iter_matches("GET", spec.path))
        if shadows:
            entry.call = _websocket_first(router, entry.call, entry.is_async or ws_async)
            entry.is_async = entry.is_async or ws_async


def _websocket_first(router: Any, http: Callable[..., Any], is_async: bool) -> Any:
    def websocket_route(req: Any) -> Any:
        if req.upgrade is None:
            return None
        for match in router.iter_matches(req.method, req.path):
            if match.route.handler.is_ws:
                req.set_match(match.params, match.values, match.route)
                return match.route.handler
        return None

    if not is_async:
        def ws_first(res: Any, req: Any) -> Any:
            found = websocket_route(req)
            return found.call(res, req) if found is not None else http(res, req)

        return ws_first

    async def ws_first_async(res: Any, req: Any) -> Any:
        found = websocket_route(req)
        result = found.call(res, req) if found is not None else http(res, req)
        if inspect.isawaitable(result):
            result = await result
        return result

    return ws_first_async


def call_listen_handler(handler: Callable[..., Any], info: AppListenOptions) -> None:
    """A listen handler that raises is a bug to show, not a reason to stop serving."""
    try:
        handler(info)
    except Exception:
        log.exception("the listen handler %r raised (the server goes on serving)", handler)


def listen_handler(handler: Callable[..., Any]) -> Callable[[dict[str, Any]], None]:
    """The runner calls listen handlers with ``{"host", "port"}`` or ``{"uds"}``; socketify's
    receive an :class:`AppListenOptions`, and one that raises is logged, not fatal."""

    def announce(info: dict[str, Any]) -> None:
        options = (AppListenOptions(domain=str(info["uds"])) if "uds" in info else
                   AppListenOptions(port=int(info["port"]), host=str(info["host"])))
        call_listen_handler(handler, options)

    return announce


@dataclass
class AppOptions:
    """socketify's TLS settings: ``App(AppOptions(key_file_name=..., cert_file_name=...))``.

    ``ssl_prefer_low_memory_usage`` is accepted for compatibility; Python's ``ssl`` has no
    such switch, so it changes nothing.
    """

    key_file_name: str | None = None
    cert_file_name: str | None = None
    passphrase: str | None = None
    dh_params_file_name: str | None = None
    ca_file_name: str | None = None
    ssl_ciphers: str | None = None
    ssl_prefer_low_memory_usage: int = 0

    def __post_init__(self) -> None:
        for name in ("key_file_name", "cert_file_name", "passphrase", "dh_params_file_name",
                     "ca_file_name", "ssl_ciphers"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise ValueError(f"AppOptions: {name} must be a str, got {value!r}")
        if not self.cert_file_name:
            raise ValueError("AppOptions: cert_file_name is required (the certificate chain)")

    def ssl_context(self) -> ssl.SSLContext:
        """The server context (``corkweb.server.tls.make_ssl_context``); bad files raise here."""
        from .server.tls import make_ssl_context

        assert self.cert_file_name is not None
        ctx = make_ssl_context(os.fspath(self.cert_file_name),
                               os.fspath(self.key_file_name) if self.key_file_name else None,
                               password=self.passphrase, ca_certs=self.ca_file_name,
                               ciphers=self.ssl_ciphers)
        if self.dh_params_file_name:
            ctx.load_dh_params(os.fspath(self.dh_params_file_name))
        return ctx


class SocketifyApp:
    """socketify's App methods (``close``, ``loop``, ``run_async``, ``trigger_error``,
    ``json_serializer``): a part of :class:`corkweb.App`, kept here with the other
    socketify names, as ``Response`` keeps streaming in ``streaming.py``."""

    if TYPE_CHECKING:  # provided by App
        _errors: Any
        _json_dumps: Callable[[Any], bytes]
        _specs: list[Any]
        _runner: Any

        def _check_open(self, what: str) -> None: ...

    _closed_by_app = False  # set by close(): run() ended because the app asked
    _ssl: Any = None  # App(AppOptions(...)) or App(ssl_context)
    _json_loads: Callable[[bytes], Any] | None = None
    _stop: asyncio.Event | None = None

    def _ssl_context(self, ssl: Any) -> Any:
        """``run(ssl=...)``, else ``App(AppOptions(...))``'s context (bad files raise here)."""
        if ssl is None and self._ssl is not None:
            ssl = self._ssl.ssl_context() if isinstance(self._ssl, AppOptions) else self._ssl
        return ssl

    def _stop_event(self) -> asyncio.Event:
        """The event ``app.run()`` also stops on: ``close()`` sets it."""
        self._stop = asyncio.Event()
        return self._stop

    def _after_run(self) -> None:
        """``app.run()`` returned."""
        self._stop = None
        if self._closed_by_signal() and fork_child():
            # socketify's fork pattern: in a forked child the code after app.run() forks or
            # serves again; a signal ends such a process, as it does under socketify.
            raise SystemExit(0)

    def close(self) -> SocketifyApp:
        """Stop serving: ``run()`` drains the connections, runs the shutdown hooks and
        returns. Callable from a handler or from another thread; before ``run()`` there is
        nothing to stop."""
        runner = self._runner
        loop, stop = (runner.loop if runner is not None else None), self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            self._closed_by_app = True
            loop.call_soon_threadsafe(stop.set)
        return self

    def _closed_by_signal(self) -> bool:
        """After ``run()`` returned: whether a signal stopped it (not ``close()``)."""
        by_app, self._closed_by_app = self._closed_by_app, False
        return not by_app

    def _static_gives_way(self, new: Any) -> bool:
        """A route of ``app.static`` and an explicit one on the same method and path (``new``
        is the explicit one's registration): the explicit one wins, whichever came first
        (socketify's ``app.get("/", home)`` beside ``app.static("/", "public")``). False for
        any other duplicate."""
        from .static import StaticFiles

        for i, spec in enumerate(self._specs):
            if spec.method == new.method and spec.path == new.path:
                if isinstance(new.handler, StaticFiles):
                    return True  # keep the explicit route
                if isinstance(spec.handler, StaticFiles):
                    self._specs[i] = new
                    return True
        return False

    @property
    def loop(self) -> Loop:
        """socketify's ``app.loop`` (``create_future``, ``create_task``, ``run_async``,
        ``create_background_task``, ``set_timeout``) over the serving asyncio loop."""
        return Loop(self)  # type: ignore[arg-type]

    def run_async(self, coro: Any, response: Any = None) -> asyncio.Task[Any]:
        """Run ``coro`` on the serving loop; with a ``response``, as ``response.run_async``.
        An exception it raises is logged with its traceback."""
        if response is not None:
            task: asyncio.Task[Any] = response.run_async(coro)
            return task
        task = asyncio.ensure_future(coro, loop=self.loop.asyncio_loop)
        task.add_done_callback(_log_failure)
        _background.add(task)
        task.add_done_callback(_background.discard)
        return task

    def trigger_error(self, error: BaseException, response: Any, request: Any) -> Any:
        """Answer ``error`` through the app's error handlers, as if a handler had raised it.
        With no response (``None``) the error is only logged."""
        if response is None:
            log.error("error reported with trigger_error", exc_info=error)
            return None
        return self._errors(error, response, request)

    def json_serializer(self, module: Any) -> None:
        """Use ``module.dumps``/``module.loads`` (``json``, ``ujson``, ``orjson``, ...) for JSON
        bodies, ``get_json`` and WebSocket messages. ``dumps`` may return ``str`` or ``bytes``."""
        from .websocket import WebSocketRoute

        self._check_open("set the JSON serializer")
        dumps, loads = getattr(module, "dumps", None), getattr(module, "loads", None)
        if not callable(dumps) or not callable(loads):
            raise TypeError(f"json_serializer({module!r}): needs callable dumps and loads")

        def encode(obj: Any) -> bytes:
            out = dumps(obj)
            return out.encode() if isinstance(out, str) else bytes(out)

        self._json_dumps = encode
        self._json_loads = loads
        for spec in self._specs:  # WebSocket routes added before keep their own reference
            route = getattr(spec.handler, "__self__", None)
            if isinstance(route, WebSocketRoute):
                route.json_dumps = encode


_background: set[asyncio.Task[Any]] = set()  # strong references: asyncio keeps weak ones


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("app.run_async task failed", exc_info=task.exception())


class MiddlewareRouter:
    """``MiddlewareRouter(app, *middlewares)``: every route added through it runs
    ``middlewares`` first (socketify's name for ``app.router("", *middlewares)``)."""

    def __new__(cls, app: App, *middlewares: Callable[..., Any]) -> Any:
        # A RouteGroup of the app, so it has all of the group's methods (get, post, ws, ...).
        return app.router("", *middlewares)


class Loop:
    """``app.loop``: socketify's loop methods over the asyncio loop that serves the app.

    Everything else is the asyncio loop's own (``app.loop.asyncio_loop``); outside a running
    server (before ``app.run()``), the methods use the current event loop.
    """

    __slots__ = ("_app",)

    def __init__(self, app: App) -> None:
        self._app = app

    @property
    def asyncio_loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio event loop."""
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.get_event_loop_policy().get_event_loop()

    def get_native_loop(self) -> asyncio.AbstractEventLoop:
        return self.asyncio_loop

    def create_future(self) -> asyncio.Future[Any]:
        return self.asyncio_loop.create_future()

    def create_task(self, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> asyncio.Task[Any]:
        return self.asyncio_loop.create_task(coro, **kwargs)

    def ensure_future(self, awaitable: Any) -> asyncio.Future[Any]:
        return asyncio.ensure_future(awaitable, loop=self.asyncio_loop)

    def run_async(self, coro: Coroutine[Any, Any, Any], response: Any = None) -> Any:
        """Run ``coro``; with a ``response``, as part of it (``res.run_async``)."""
        if response is not None:
            return response.run_async(coro)
        return self._app.run_async(coro)

    def create_background_task(self, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` (a coroutine function or a plain one) on the next loop iteration."""
        loop = self.asyncio_loop

        def start() -> None:
            result = fn()
            if asyncio.iscoroutine(result):
                self._app.run_async(result)

        loop.call_soon(start)

    def set_timeout(self, timeout: float, callback: Callable[[Any], Any],
                    user_data: Any = None) -> asyncio.TimerHandle:
        """``callback(user_data)`` after ``timeout`` seconds."""
        return self.asyncio_loop.call_later(timeout, callback, user_data)

    def run_until_complete(self, awaitable: Any) -> Any:
        return self.asyncio_loop.run_until_complete(awaitable)

    def stop(self) -> None:
        """Stop serving (``app.close()``)."""
        self._app.close()


async def sendfile(res: Any, req: Any, filename: str | os.PathLike[str]) -> None:
    """``await sendfile(res, req, path)``: the file with Range, 304 and HEAD support, or 404.

    ``res.sendfile(path)`` is the method form. The path is trusted: never build it from
    request input unchecked (``app.static`` checks containment).
    """
    from .errors import NotFound

    try:
        await res.sendfile(filename)
    except NotFound:
        # socketify answers a missing file itself rather than raising to the error handler.
        if not res.has_responded():
            res.write_status(404).end(b"Not Found")
