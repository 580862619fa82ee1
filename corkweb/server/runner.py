"""Running an application: connection classes, listening, supervising, the lifespan.

The application hands over a :class:`ServedApp` — a record of what the server needs of it
(a handler, an error handler, the classes to build requests and responses with, the options,
limits and lifespan hooks) — and :class:`Runner` does the rest: it builds the connection class
(access log, PROXY protocol), serves on the running loop (``start``/``stop``) or owns the
process (``run``: listening, worker processes, reload, signals, graceful shutdown). Nothing here
imports the framework layer: ``App.run``/``start``/``stop`` delegate to a runner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import AlreadyServingError
from ..wire.limits import Limits
from .forks import share_ports
from .http import HTTPConnection
from .serve import Server, listen_error, listen_url, new_event_loop
from .serve import run as serve_forever
from .state import ErrorHandler, Handler

__all__ = ["ServedApp", "Runner", "connection_class", "listen_info"]

log = logging.getLogger("corkweb.error")

Listen = tuple[dict[str, Any], Callable[[dict[str, Any]], Any] | None]


@dataclass
class ServedApp:
    """What the server needs of an application, built once when it starts serving."""

    handler: Handler
    error_handler: ErrorHandler | None = None
    #: Opaque to the server but for what the exchange reads (``json_dumps``).
    options: Any = None
    limits: Limits = field(default_factory=Limits)
    request_class: type | None = None
    response_class: type | None = None
    #: ``upgrade_handler(conn, res, rest)``: switch protocol (WebSocket) after an upgrade.
    upgrade_handler: Callable[..., Any] | None = None
    on_start: list[Callable[[], Any]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Any]] = field(default_factory=list)
    #: Connections start with a PROXY protocol header (from these trusted proxies).
    proxy_protocol: bool = False
    trusted_proxies: Any = None


def connection_class(*, access_log: bool | str = False, proxy_protocol: bool = False,
                     trusted_proxies: Any = None) -> type[HTTPConnection]:
    """The HTTP connection class for these options. The PROXY protocol layer goes outside the
    access log's: it must read the PROXY header before anything else sees the bytes, and the
    access log then records the client it names."""
    cls: type[HTTPConnection] = HTTPConnection
    if access_log:
        from .access_log import access_log_protocol

        cls = access_log_protocol(None if access_log is True else str(access_log))
    if proxy_protocol:
        from .proxy_protocol import proxy_protocol_class

        cls = proxy_protocol_class(cls, trusted_proxies)
    return cls


def listen_info(address: Any) -> dict[str, Any]:
    """What a ``listen()`` handler receives: ``{"host", "port"}`` or ``{"uds"}``."""
    if isinstance(address, tuple):
        return {"host": address[0], "port": address[1]}
    return {"uds": address}


class Runner:
    """Serves an app: in the running loop (``start``/``stop``), or as the whole process
    (``run``). Each serve gets a fresh :class:`Server`, one at a time, so an app can be served
    again once it stopped; ``start`` on the loop already serving adds a socket to that server.

    ``build()`` makes the :class:`ServedApp`; it is called where a server is made (so a
    supervisor process, which only starts workers, never builds one)."""

    def __init__(self, build: Callable[[], ServedApp], limits: Limits) -> None:
        self._build = build
        self.limits = limits
        #: The ``Server`` while serving, else ``None``.
        self.server: Server | None = None
        #: The loop ``run`` serves on, while it does.
        self.loop: asyncio.AbstractEventLoop | None = None
        self._hooks: ServedApp | None = None

    @property
    def drain_deadline(self) -> float | None:
        """The loop time by which a graceful shutdown under way gives up waiting."""
        return self.server.drain_deadline if self.server is not None else None

    def _new_server(self, loop: asyncio.AbstractEventLoop | None = None,
                    access_log: bool | str = False) -> Server:
        server = self.server
        if server is not None:
            if loop is not None and server.loop is loop:
                return server
            raise AlreadyServingError(
                "this App is already being served (by app.run(), a TestClient or TestServer, "
                "or app.start() without app.stop()); stop that first (leave its `with` "
                "block), or build one App per server with an app factory (docs/testing.md)")
        s = self._hooks = self._build()
        self.server = Server(
            s.handler, error_handler=s.error_handler, options=s.options, limits=s.limits,
            upgrade_handler=s.upgrade_handler, request_class=s.request_class,
            response_class=s.response_class,
            protocol_class=connection_class(access_log=access_log,
                                            proxy_protocol=s.proxy_protocol,
                                            trusted_proxies=s.trusted_proxies))
        return self.server

    async def start(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> list[Any]:
        """Run the start hooks, then serve on the running loop; returns the bound addresses."""
        loop = asyncio.get_running_loop()
        again = self.server is not None and self.server.loop is loop
        server = self._new_server(loop)
        if not again:
            assert self._hooks is not None
            try:
                for hook in self._hooks.on_start:
                    result = hook()
                    if asyncio.iscoroutine(result):
                        await result
            except BaseException:
                self.server = None  # nothing listens: the app can be started again
                raise
        return await server.start(host, port, **kwargs)

    async def stop(self, timeout: float | None = None) -> None:
        """Drain and stop what ``start`` started, then run the shutdown hooks. The app can
        then be served again, by a new server."""
        if self.server is not None:
            await self.server.shutdown(timeout)
        try:
            for hook in self._hooks.on_shutdown if self._hooks is not None else ():
                result = hook()
                if asyncio.iscoroutine(result):
                    await result
        finally:
            self.server = None

    def run(self, listens: Iterable[Listen], *, ssl: Any = None, workers: int = 1,
            reload: bool = False, reload_dirs: Iterable[str] = (),
            access_log: bool | str = False, reuse_port: bool | None = None,
            backlog: int = 2048, worker_timeout: float | None = None,
            on_serve: Callable[[], Any] | None = None,
            stop: asyncio.Event | None = None) -> None:
        """Own the process until SIGINT/SIGTERM: as a supervisor of worker processes
        (``workers > 1`` or ``reload``), or serving ``listens`` itself (also as a worker).
        ``on_serve()`` is called once this process built its server, unless it is a worker.
        Setting ``stop`` (from ``loop``'s thread) stops serving as a signal would."""
        from . import workers as _workers

        listens = list(listens)
        inherited = _workers.worker_sockets()
        if inherited is None and (workers > 1 or reload):
            def ready(addresses: list[Any]) -> None:
                for (_opts, handler), address in zip(listens, addresses, strict=False):
                    log.info("corkweb listening on %s", listen_url(address, ssl is not None))
                    if handler is not None:
                        handler(listen_info(address))

            try:
                code = _workers.supervise(
                    [opts for opts, _ in listens], workers=workers, reuse_port=reuse_port,
                    backlog=backlog, shutdown_timeout=self.limits.drain_timeout + 5.0,
                    reload=reload, reload_dirs=list(reload_dirs), on_ready=ready,
                    worker_timeout=worker_timeout)
            except OSError as exc:
                raise SystemExit(listen_error(exc, [o for o, _ in listens]) or exc) from None
            if code:
                raise SystemExit(code)
            return
        if inherited is not None:  # a worker: serve the supervisor's sockets
            listens = [({"sock": sock}, None) for sock in inherited]
        self.loop = loop = new_event_loop()
        server = self._new_server(access_log=access_log)
        # In one process, TCP sockets share their port only in processes that forked after
        # corkweb was imported (socketify's os.fork() pattern; see forks.py).
        shared = share_ports() if reuse_port is None else reuse_port
        assert self._hooks is not None
        if inherited is None and on_serve is not None:
            on_serve()

        def announce(addresses: list[Any]) -> None:
            for (_opts, handler), address in zip(listens, addresses, strict=False):
                info = listen_info(address)
                # in a worker, the supervisor announces the address once for all
                (log.debug if inherited is not None else log.info)(
                    "corkweb listening on %s", listen_url(address, ssl is not None))
                if handler is not None:
                    handler(info)
            _workers.notify_ready()

        try:
            serve_forever(
                server,
                [{**opts, "ssl": ssl, "backlog": backlog,
                  **({"reuse_port": shared} if "port" in opts else {})} for opts, _ in listens],
                on_start=self._hooks.on_start,
                on_shutdown=self._hooks.on_shutdown,
                on_listen=announce,
                loop=loop,
                stop=stop,
            )
        except OSError as exc:
            message = listen_error(exc, [o for o, _ in listens])
            if message is None:
                raise
            raise SystemExit(message) from None
        finally:
            self.server = self.loop = None
        if inherited is not None:  # a worker: see workers.ignore_stop_signals
            _workers.ignore_stop_signals()
