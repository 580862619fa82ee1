"""Listening, the event loop, signals and graceful shutdown.

``Server`` binds sockets and serves connections with a handler; ``run`` owns a whole process:
it creates the loop (uvloop where available), runs the start hooks, serves until SIGINT or
SIGTERM, drains (stop accepting, let in-flight requests finish within ``drain_timeout``, read
idle keep-alive connections for ``drain_idle`` more seconds, answering what arrives with
``connection: close``), runs the shutdown hooks and returns. Nothing polls: an
idle server sleeps in the loop's selector and uses no CPU.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..wire.limits import Limits
from .http import HTTPConnection
from .state import ErrorHandler, Handler, ServerState

__all__ = ["Server", "new_event_loop", "run"]

log = logging.getLogger("corkweb.error")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop, or asyncio's own where uvloop is not installed (Windows)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class Server:
    """Serves ``handler`` on one or more listening sockets of the current event loop."""

    def __init__(
        self,
        handler: Handler,
        *,
        error_handler: ErrorHandler | None = None,
        options: Any = None,
        limits: Limits | None = None,
        upgrade_handler: Callable[..., Any] | None = None,
        protocol_class: type[HTTPConnection] = HTTPConnection,
    ) -> None:
        self._handler = handler
        self._error_handler = error_handler
        self._options = options
        self.limits = limits or Limits()
        self._upgrade_handler = upgrade_handler
        self._protocol_class = protocol_class
        self._servers: list[asyncio.AbstractServer] = []
        self.state: ServerState | None = None
        self._drained: asyncio.Event | None = None
        #: The loop time by which a graceful shutdown gives up waiting (set when it starts):
        #: later shutdown steps (background tasks) share the same bound.
        self.drain_deadline: float | None = None

    async def start(
        self,
        host: str | None = "127.0.0.1",
        port: int = 0,
        *,
        uds: str | None = None,
        sock: socket.socket | None = None,
        ssl: Any = None,
        backlog: int = 2048,
        reuse_port: bool = False,
    ) -> list[Any]:
        """Bind and start accepting; returns the bound addresses (``(host, port)`` or path)."""
        loop = asyncio.get_running_loop()
        if self.state is None:
            self.state = ServerState(
                loop, self._handler, error_handler=self._error_handler, options=self._options,
                limits=self.limits, upgrade_handler=self._upgrade_handler,
            )
        state = self.state
        cls = self._protocol_class

        def factory() -> HTTPConnection:
            return cls(state)

        if sock is not None:
            server = await loop.create_server(factory, sock=sock, ssl=ssl, backlog=backlog)
        elif uds is not None:
            if os.path.exists(uds) and not os.path.isfile(uds):
                os.unlink(uds)  # a stale socket left by a previous run
            server = await loop.create_unix_server(factory, uds, ssl=ssl, backlog=backlog)
        else:
            server = await loop.create_server(
                factory, host, port, ssl=ssl, backlog=backlog,
                reuse_port=reuse_port or None,
            )
        self._servers.append(server)
        addresses = []
        for s in server.sockets or ():
            name = s.getsockname()
            addresses.append(name[:2] if isinstance(name, tuple) else name)
        return addresses

    @property
    def connections(self) -> int:
        return len(self.state.connections) if self.state else 0

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, let requests in flight finish (up to ``timeout``), close the rest."""
        timeout = self.limits.drain_timeout if timeout is None else timeout
        self.drain_deadline = asyncio.get_running_loop().time() + timeout
        for server in self._servers:
            server.close()
        state = self.state
        if state is None:
            return
        state.draining = True
        for conn in list(state.connections):
            conn.shutdown()
        if state.connections:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while state.connections and loop.time() < deadline:
                # Woken by each connection's close (no polling): see HTTPConnection.
                waiter = loop.create_future()
                state.on_empty = waiter
                try:
                    await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    break
            for conn in list(state.connections):
                log.warning("shutdown: closing a connection still busy after %.1fs", timeout)
                conn.abort_transport()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


async def _call_hooks(hooks: Iterable[Callable[[], Any]]) -> None:
    for hook in hooks:
        result = hook()
        if isinstance(result, Awaitable):
            await result


def run(
    server: Server,
    listens: list[dict[str, Any]],
    *,
    on_start: Iterable[Callable[[], Any]] = (),
    on_shutdown: Iterable[Callable[[], Any]] = (),
    on_listen: Callable[[list[Any]], Any] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> None:
    """Run ``server`` in this process until SIGINT/SIGTERM, then shut down gracefully.

    ``listens`` holds keyword arguments for :meth:`Server.start` (one dict per socket).
    A failing start hook aborts before anything listens, with the error logged.
    """
    loop = loop or new_event_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()

    def request_stop(signame: str) -> None:
        if stop.is_set():
            return
        log.info("received %s: shutting down gracefully", signame)
        stop.set()

    async def main() -> None:
        try:
            await _call_hooks(on_start)
        except Exception:
            log.exception("an on_start hook failed; not serving")
            raise
        addresses: list[Any] = []
        for kwargs in listens:
            addresses += await server.start(**kwargs)
        # Everything alive now (modules, the app, its routes) lives until exit: move it out of
        # the collector's generations, so full collections during serving do not walk it.
        gc.collect()
        gc.freeze()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, request_stop, sig.name)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, threads
                def forward(*_: Any, name: str = sig.name) -> None:
                    loop.call_soon_threadsafe(request_stop, name)

                signal.signal(sig, forward)
        if on_listen is not None:
            on_listen(addresses)
        try:
            await stop.wait()
        finally:
            await server.shutdown()
            await _call_hooks(on_shutdown)

    try:
        loop.run_until_complete(main())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            sys.stdout.flush()
