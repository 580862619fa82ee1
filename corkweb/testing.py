"""Testing helpers: run an app on a real socket in a background thread.

>>> from corkweb.testing import TestServer
>>> with TestServer(app) as server:
...     r = httpx.get(server.url + "/")

The server listens on an ephemeral port of 127.0.0.1 and is ready when ``__enter__`` returns
(it waits on a readiness signal, never on a sleep). On exit it drains like a real shutdown and
runs the app's shutdown hooks.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from .server.serve import new_event_loop

__all__ = ["TestServer"]


class TestServer:
    """An app served from a thread for the duration of a ``with`` block."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 **start_kwargs: Any) -> None:
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
    def loop(self) -> asyncio.AbstractEventLoop:
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
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError("the app failed to start") from self._error
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: stopped.done() or stopped.set_result(None))
        if self._thread is not None:
            self._thread.join(15)
