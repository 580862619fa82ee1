"""Shared fixtures: a real server on an ephemeral port, raw-socket helpers."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from corkweb import App
from corkweb.testing import PostgresNotInstalled, PostgresServer, TestServer


@pytest.fixture
def serve() -> Iterator[Callable[..., TestServer]]:
    """``server = serve(app)``: the app on a real socket until the test ends."""
    started: list[TestServer] = []

    def start(app: App, **kwargs: Any) -> TestServer:
        server = TestServer(app, **kwargs).__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server for the session (corkweb.testing.PostgresServer)."""
    try:
        server = PostgresServer()
    except PostgresNotInstalled as exc:
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture
def pg_dsn(pg_cluster: PostgresServer) -> str:
    """A new empty database on the session's PostgreSQL server."""
    if not pg_cluster.running:  # a test that stopped the server failed before restarting it
        pg_cluster.start()
    return pg_cluster.create_database()


def raw_exchange(port: int, data: bytes | list[bytes], timeout: float = 3.0,
                 until_close: bool = True, expect: int | None = None) -> bytes:
    """Send ``data`` (pieces sent one by one) and read until the server closes.

    With ``expect=N`` it stops after N complete responses instead.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        for piece in data if isinstance(data, list) else [data]:
            s.sendall(piece)
        buf = b""
        while True:
            if expect is not None and len(parse_responses(buf)) >= expect:
                return buf
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                if until_close:
                    raise AssertionError(f"server did not close; got {buf!r}") from None
                return buf
            except ConnectionResetError:
                return buf
            if not chunk:
                return buf
            buf += chunk


class Parsed:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __repr__(self) -> str:
        return f"<Parsed {self.status} {self.headers} {self.body[:60]!r}>"


def parse_responses(data: bytes, head_request: bool = False) -> list[Parsed]:
    """Split a byte stream into complete responses (Content-Length or chunked framing)."""
    out: list[Parsed] = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        headers = []
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip().lower(), v.strip()))
        rest = data[end + 4:]
        hmap = dict(headers)
        if status < 200 or status in (204, 304) or head_request:
            body = b""
        elif "content-length" in hmap:
            n = int(hmap["content-length"])
            if len(rest) < n:
                break
            body, rest = rest[:n], rest[n:]
        elif hmap.get("transfer-encoding") == "chunked":
            body = b""
            complete = False
            while True:
                line_end = rest.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(rest[:line_end].split(b";")[0], 16)
                if len(rest) < line_end + 2 + size + 2:
                    break
                body += rest[line_end + 2:line_end + 2 + size]
                rest = rest[line_end + 2 + size + 2:]
                if size == 0:
                    complete = True
                    break
            if not complete:
                break
        else:
            body, rest = rest, b""
        out.append(Parsed(status, headers, body))
        data = rest
    return out


def read_events(response: httpx.Response, count: int) -> list[str]:
    """The first ``count`` Server-Sent Events blocks of a streamed ``response`` (fewer if it
    ends first), each without its terminating blank line."""
    events: list[str] = []
    buf = ""
    for text in response.iter_text():
        buf += text
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            events.append(block)
            if len(events) == count:
                return events
    return events
