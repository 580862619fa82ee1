"""A client that goes away in the middle of a large streamed answer, over real sockets.

The client asks for a 48 MiB body, reads a little through a small receive buffer (so the
server's writes back up and it waits for writability), then leaves: a plain close with unread
bytes (the kernel answers with RST), ``shutdown`` then close, an abortive close (SO_LINGER 0),
or a half close (``shutdown(SHUT_WR)``, the socket kept open and never read). Whichever way,
the handler's wait must end promptly (``send_chunk`` gives ``ok=False``, ``on_writable`` stops
being called, ``sendfile`` returns), ``on_aborted`` must run and the response must be freed
(without a garbage collection): corkweb never leaves a handler hanging on a client that left.
"""

from __future__ import annotations

import socket
import struct
import threading
import weakref
from pathlib import Path

import pytest
from conftest import TestServer

from corkweb import App, Limits
from corkweb.compat import sendfile

TOTAL = 48 * 1024 * 1024
PIECE = b"x" * 65536
PROMPT = 2.0  # seconds: how soon the handler must learn that the client left
LEAVES = ("close", "shutdown", "linger0", "half_close")
HIGH_WATER = 64 * 1024


class Watch:
    """What the server's handler reports, as thread-safe events the test waits on."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ended = threading.Event()
        self.aborted = threading.Event()
        #: Set when the handler waits with more than the transport's high-water mark unsent:
        #: the transport paused writing (and so reading); a client that never reads keeps it so.
        self.paused = threading.Event()
        self.freed = threading.Event()
        self.result: object = None

    def begin(self, res) -> None:
        weakref.finalize(res, self.freed.set)
        res.on_aborted(lambda r: self.aborted.set())
        self.started.set()

    def waiting(self, res) -> None:
        # Looked at once this step's writes were flushed: what is left is in the transport.
        res.loop.call_soon(self._look, res)

    def _look(self, res) -> None:
        if res.get_buffered_amount() > HIGH_WATER:
            self.paused.set()


def leave(port: int, path: str, how: str, watch: Watch) -> socket.socket | None:
    """Request ``path``, read a little of the answer, then go away as ``how`` says. Returns
    the socket when it must stay open (a half close), for the caller to close later."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    if how == "half_close" and path != "/file":
        # Read nothing, and close our side only once the server stopped writing (and reading):
        # with no read, nothing resumes it, so the end-of-stream is sure to wait unread.
        assert watch.paused.wait(PROMPT * 5), "the server never paused writing"
        s.shutdown(socket.SHUT_WR)
        return s
    got = 0
    while got < 256 * 1024:
        data = s.recv(65536)
        assert data, "the server closed before sending 256 KiB"
        got += len(data)
    if how == "half_close":
        s.shutdown(socket.SHUT_WR)
        return s
    if how == "shutdown":
        s.shutdown(socket.SHUT_RDWR)
    elif how == "linger0":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return None


def app_for(watch: Watch, big_file: Path) -> App:
    app = App(templates=None, limits=Limits(write_high_water=HIGH_WATER))

    @app.get("/chunks")
    async def chunks(res, req):
        watch.begin(res)
        ok, done = True, False
        try:
            while ok and not done:
                sent = res.send_chunk(PIECE, TOTAL)
                if not sent.done():
                    watch.waiting(res)
                ok, done = await sent
        finally:
            watch.result = (ok, done)
            watch.ended.set()

    @app.get("/writable")
    def writable(res, req):
        def pump(r, offset=0):
            while True:
                ok, done = r.try_end(PIECE, TOTAL)
                if done:
                    watch.result = "done"
                    watch.ended.set()
                    return True
                if not ok:
                    watch.waiting(r)
                    return False

        def gone(r):
            watch.result = r.get_write_offset()
            watch.aborted.set()
            watch.ended.set()

        watch.begin(res)
        res.on_writable(pump)
        res.on_aborted(gone)
        pump(res)

    @app.get("/file")
    async def file(res, req):
        # The zero-copy send does not pause reading: a half close is read at once there.
        watch.begin(res)
        try:
            await sendfile(res, req, big_file)
            watch.result = "returned"
        except Exception as exc:  # the test reports what the handler saw
            watch.result = exc
            raise
        finally:
            watch.ended.set()

    return app


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gone") / "big.bin"
    with path.open("wb") as f:
        f.truncate(TOTAL)  # sparse: 48 MiB of zeros without writing them
    return path


@pytest.mark.parametrize("how", LEAVES)
@pytest.mark.parametrize("route", ["/chunks", "/writable", "/file"])
def test_handler_learns_promptly_that_the_client_left(route: str, how: str,
                                                      big_file: Path) -> None:
    watch = Watch()
    with TestServer(app_for(watch, big_file)) as server:
        kept = leave(server.port, route, how, watch)
        try:
            assert watch.started.wait(PROMPT)
            assert watch.aborted.wait(PROMPT), (
                f"{route}, client left by {how}: on_aborted did not run within {PROMPT} s")
            assert watch.ended.wait(PROMPT), (
                f"{route}, client left by {how}: the handler still waits after {PROMPT} s")
            assert watch.freed.wait(PROMPT), (
                f"{route}, client left by {how}: the response is still alive after {PROMPT} s")
        finally:
            if kept is not None:
                kept.close()
    if route == "/chunks":
        assert watch.result == (False, True)
    elif route == "/writable":
        assert isinstance(watch.result, int) and 0 < watch.result < TOTAL
    else:
        assert watch.result == "returned"
