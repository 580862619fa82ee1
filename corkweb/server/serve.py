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
import errno
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..errors import CorkwebError
from ..wire.limits import Limits
from .http import HTTPConnection
from .state import ErrorHandler, Handler, ServerState

__all__ = ["Server", "new_event_loop", "run", "listen_url", "listen_error"]

log = logging.getLogger("corkweb.error")


def listen_url(address: Any, tls: bool = False) -> str:
    """``http://127.0.0.1:3000``, ``https://[::1]:8443`` or ``unix:/run/app.sock``: how the
    "corkweb listening on" line names a bound address, so it can be pasted into a browser."""
    if isinstance(address, tuple):
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        return f"{'https' if tls else 'http'}://{host}:{address[1]}"
    return f"unix:{address}"


def listen_error(exc: OSError, listens: Iterable[dict[str, Any]]) -> str | None:
    """The one line to print when an address cannot be listened on (a port taken, a port that
    needs privileges, a host that is not this machine's), saying what to do; ``None`` for any
    other error."""
    ports = [(o.get("host"), o["port"]) for o in listens if "port" in o]
    host, port = ports[0] if len(ports) == 1 else (None, None)
    other = port + 1 if port else 3001
    pick = (f"pick another port: app.run(port={other}), corkweb run -p {other} or "
            f"CORKWEB_PORT={other} (port 0 picks a free one)")
    if exc.errno == errno.EADDRINUSE:
        where = (f"port {port} on {host or 'every interface'} is" if port else
                 f"an address ({exc.strerror or exc}) is")
        return (f"corkweb: error: {where} already in use (another server, or an earlier one "
                f"still running?); {pick}")
    if exc.errno == errno.EACCES and port:
        return (f"corkweb: error: port {port} needs privileges this process does not have "
                f"(ports below 1024 usually do); use a port such as 8080 behind a proxy, or "
                f"{pick}")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"corkweb: error: cannot listen on {host or 'that host'}: it is not an address "
                f"of this machine; use 127.0.0.1 (this machine only) or 0.0.0.0 (every "
                f"interface): app.run(host=...), corkweb run -H ... or CORKWEB_HOST")
    return None


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
        request_class: type | None = None,
        response_class: type | None = None,
    ) -> None:
        self._handler = handler
        self._request_class = request_class
        self._response_class = response_class
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
                request_class=self._request_class, response_class=self._response_class,
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

    def force_close(self) -> None:
        """Stop waiting for a graceful shutdown: drop every connection now (a second Ctrl-C)."""
        self._forced = True
        state = self.state
        if state is None:
            return
        for conn in list(state.connections):
            conn.abort_transport()
        if state.on_empty is not None and not state.on_empty.done():
            state.on_empty.set_result(None)

    _forced = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this server was started on (``None`` before ``start``)."""
        return self.state.loop if self.state is not None else None

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
        if state.connections and not self._forced:
            busy = [_busy_with(conn) for conn in state.connections]
            log.info("waiting up to %.3gs for %d connection%s to finish: %s%s; press Ctrl-C "
                     "again to close %s now", timeout, len(busy), "s" if len(busy) > 1 else "",
                     ", ".join(busy[:5]), " ..." if len(busy) > 5 else "",
                     "them" if len(busy) > 1 else "it")
        if state.connections:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while state.connections and loop.time() < deadline and not self._forced:
                # Woken by each connection's close (no polling): see HTTPConnection.
                waiter = loop.create_future()
                state.on_empty = waiter
                try:
                    await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    break
            for conn in list(state.connections):
                if not self._forced:
                    log.warning("shutdown: closing a connection still busy after %.1fs (%s)",
                                timeout, _busy_with(conn))
                conn.abort_transport()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


def _busy_with(conn: Any) -> str:
    describe = getattr(conn, "busy_with", None)
    return str(describe()) if describe is not None else type(conn).__name__


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still running once serving ended (a handler stuck past the drain),
    and let them unwind, so closing the loop leaves no "Task was destroyed but it is pending"."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    log.info("cancelling %d task%s still running", len(tasks), "s" if len(tasks) > 1 else "")
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def _hook_name(hook: Callable[..., Any]) -> str:
    name = getattr(hook, "__qualname__", None) or repr(hook)
    code = getattr(hook, "__code__", None)
    if code is None:
        return name
    return f"{name}, {os.path.basename(code.co_filename)}:{code.co_firstlineno}"


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
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``server`` in this process until SIGINT/SIGTERM, then shut down gracefully.

    ``listens`` holds keyword arguments for :meth:`Server.start` (one dict per socket).
    A failing start hook aborts before anything listens, with the error logged.
    """
    loop = loop or new_event_loop()
    asyncio.set_event_loop(loop)
    if stop is None:  # given: setting it (from the loop's thread) stops as a signal would
        stop = asyncio.Event()

    def request_stop(signame: str) -> None:
        if stop.is_set():
            if server.connections:
                log.warning("received %s again: closing %d connection%s now", signame,
                            server.connections, "s" if server.connections > 1 else "")
            server.force_close()
            return
        log.info("received %s: shutting down gracefully", signame)
        stop.set()

    async def main() -> None:
        for hook in on_start:
            try:
                await _call_hooks((hook,))
            except CorkwebError:
                raise  # corkweb's own (a hosted app's lifespan): its caller reports it
            except Exception as exc:
                # Logged once, with the hook named; then the process exits 1 without a second
                # copy of the same traceback from the interpreter.
                log.error("an on_start hook failed (%s); not serving", _hook_name(hook),
                          exc_info=exc)
                raise SystemExit(1) from None
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
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            sys.stdout.flush()
