"""Testing helpers: run an app on a real socket and talk to it with real clients, or on a
recording transport with a fake clock.

Three levels:

* :class:`TestServer` serves an app from a background thread on an ephemeral port of
  127.0.0.1 for the duration of a ``with`` block;
* :class:`TestClient` wraps a ``TestServer`` with an `httpx <https://www.python-httpx.org>`_
  client (sync, and async through :meth:`TestClient.async_client`) and a WebSocket helper built
  on the ``websockets`` package (:meth:`TestClient.websocket`);
* :func:`connect` serves an app on one connection whose transport records each write
  (:class:`RecordingTransport`: corking is ``len(transport.writes) == 1``), its timeouts on a
  :class:`FakeClock` when one is given (``clock.advance(5)``: a timing test sleeps for nothing).

>>> from corkweb.testing import TestClient
>>> with TestClient(app) as client:
...     assert client.get("/").text == "Hello, World!"

A pytest fixture is three lines::

    @pytest.fixture(scope="module")
    def client():
        with TestClient(create_app()) as client:
            yield client

The server is ready when ``__enter__`` returns (it waits on a readiness signal, never on a
sleep). On exit it drains like a real shutdown and runs the app's shutdown hooks. An app is
frozen once it serves (no new routes), and is served by one server at a time: a module-level
app can be used by test after test, each with a fresh server; for servers side by side, build
one app per server with a factory.

``httpx`` and ``websockets`` are needed only by :class:`TestClient` (``pip install
"corkweb[testing]"``); they are imported when a client is created.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from ..pg_server import PostgresNotInstalled, PostgresServer
from ..server.serve import new_event_loop
from .clock import FakeClock, FakeTimer
from .protocol import connect, server_state
from .transport import RecordingTransport

__all__ = ["TestServer", "TestClient", "PostgresServer", "PostgresNotInstalled",
           "RecordingTransport", "FakeClock", "FakeTimer", "connect", "server_state"]


class TestServer:
    """An app served from a thread for the duration of a ``with`` block."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 **start_kwargs: Any) -> None:
        if not callable(getattr(app, "start", None)):
            name = getattr(app, "__name__", type(app).__name__)
            hint = (f": call it, TestClient({name}())" if callable(app) else
                    ": pass the App object")
            raise TypeError(f"{name} is {type(app).__name__}, not a corkweb App{hint}")
        self.app = app
        self.host = host
        self.port = port
        self._kwargs = start_kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Future[None] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server runs on (in its own thread)."""
        assert self._loop is not None
        return self._loop

    def _main(self) -> None:
        loop = self._loop = new_event_loop()
        asyncio.set_event_loop(loop)

        async def serve() -> None:
            try:
                addresses = await self.app.start(self.host, self.port, **self._kwargs)
                self.port = addresses[0][1]
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._stopped = loop.create_future()
            self._ready.set()
            await self._stopped
            await self.app.stop()

        try:
            loop.run_until_complete(serve())
        finally:
            loop.close()

    def __enter__(self) -> TestServer:
        self._thread = threading.Thread(target=self._main, name="corkweb-test-server",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the app did not start listening within 10 s")
        if self._error is not None:
            raise RuntimeError(f"the app failed to start: {self._error}") from self._error
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():

            def stop() -> None:
                if not stopped.done():
                    stopped.set_result(None)

            loop.call_soon_threadsafe(stop)
        if self._thread is not None:
            self._thread.join(15)


class TestClient:
    """An app on a real socket plus the clients to talk to it.

    ``TestClient(app, timeout=5.0, **start_kwargs)``; use it as a context manager. HTTP
    methods (``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``, ``options``,
    ``request``, ``stream``) are those of a sync :class:`httpx.Client` whose ``base_url`` is
    the server, so paths are enough: ``client.post("/items", json={...})``. The client keeps
    its connection alive between requests, like a browser.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, app: Any, *, timeout: float = 5.0, **start_kwargs: Any) -> None:
        self.app = app
        self.timeout = timeout
        self.server = TestServer(app, **start_kwargs)
        self._http: Any = None

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> TestClient:
        import httpx

        self.server.__enter__()
        self._http = httpx.Client(base_url=self.url, timeout=self.timeout)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._http is not None:
                self._http.close()
        finally:
            self.server.__exit__(exc_type, exc, tb)

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.server.url

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return self.server.ws_url

    @property
    def port(self) -> int:
        return self.server.port

    # -- HTTP -----------------------------------------------------------------------------------

    @property
    def http(self) -> Any:
        """The sync :class:`httpx.Client` (for anything the shortcuts below do not cover)."""
        if self._http is None:
            raise RuntimeError("use the TestClient in a with block first")
        return self._http

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.http.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.http.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.http.post(url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        return self.http.put(url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.http.patch(url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.http.delete(url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Any:
        return self.http.head(url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Any:
        return self.http.options(url, **kwargs)

    def stream(self, method: str, url: str, **kwargs: Any) -> Any:
        """``with client.stream("GET", "/events") as r: for line in r.iter_lines(): ...``"""
        return self.http.stream(method, url, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A new :class:`httpx.AsyncClient` on the server; use it in ``async with``.

        The server runs on its own loop and thread, so the client works from any event loop
        (``asyncio.run`` in a plain test, or pytest-asyncio and anyio).
        """
        import httpx

        kwargs.setdefault("timeout", self.timeout)
        return httpx.AsyncClient(base_url=self.url, **kwargs)

    # -- WebSockets -------------------------------------------------------------------------------

    def websocket(self, path: str, **kwargs: Any) -> Any:
        """A sync WebSocket connection to ``path`` (``websockets.sync.client.connect``).

        ``with client.websocket("/ws") as ws: ws.send("hi"); assert ws.recv() == "hi"``.
        ``recv`` takes a ``timeout`` in seconds; the default open and close timeouts are the
        client's ``timeout``.
        """
        from websockets.sync.client import connect

        kwargs.setdefault("open_timeout", self.timeout)
        kwargs.setdefault("close_timeout", self.timeout)
        return connect(self.ws_url + path, **kwargs)

    def websocket_async(self, path: str, **kwargs: Any) -> Any:
        """An asyncio WebSocket connection (``websockets.asyncio.client.connect``), for
        ``async with client.websocket_async("/ws") as ws: ...``."""
        from websockets.asyncio.client import connect

        kwargs.setdefault("open_timeout", self.timeout)
        kwargs.setdefault("close_timeout", self.timeout)
        return connect(self.ws_url + path, **kwargs)
