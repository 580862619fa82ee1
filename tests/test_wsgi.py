"""Hosted WSGI over real sockets: a Flask app and the Django project's WSGI side, on corkweb's
thread pool (the loop never blocks), with lazily read and streamed bodies."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import parse_responses, raw_exchange

from corkweb.asgi import HostedApp
from corkweb.testing import TestServer


@pytest.fixture(scope="module")
def flask_server() -> Iterator[TestServer]:
    from apps.hosted import flask_app

    with TestServer(HostedApp(flask_app.app)) as running:  # detected as WSGI
        yield running


def test_flask_plaintext_json_and_info(flask_server: TestServer) -> None:
    url = flask_server.url
    r = httpx.get(url + "/plaintext")
    assert (r.status_code, r.text) == (200, "Hello, World!")
    assert r.headers["content-length"] == "13"
    assert httpx.get(url + "/json").json() == {"message": "Hello, World!"}
    data = httpx.get(url + "/info?q=%C3%A9").json()
    assert data["path"] == "/info" and data["query"] == "é" and data["remote"] == "127.0.0.1"
    assert data["scheme"] == "http" and data["thread"].startswith("corkweb-wsgi")
    assert httpx.get(url + "/missing").status_code == 404


def test_flask_reads_large_and_chunked_bodies(flask_server: TestServer) -> None:
    body = bytes(range(256)) * 12_000  # 3 MB: the socket pauses while the app lags
    r = httpx.post(flask_server.url + "/echo", content=body)
    assert r.json() == {"size": len(body), "first": body[:5].decode("latin-1")}

    def pieces() -> Iterator[bytes]:
        for i in range(100):
            yield b"%04d" % i

    r = httpx.post(flask_server.url + "/echo", content=pieces())
    assert r.json() == {"size": 400, "first": "00000"}


def test_flask_streamed_response(flask_server: TestServer) -> None:
    with httpx.stream("GET", flask_server.url + "/stream?n=50") as r:
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.read() == b"".join(b"part %d\n" % i for i in range(50))


def test_flask_error_is_logged_and_500(flask_server: TestServer,
                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert httpx.get(flask_server.url + "/boom").status_code == 500
    assert "flask boom" in caplog.text


def test_pipelined_wsgi_requests_keep_order(flask_server: TestServer) -> None:
    paths = ["/plaintext", "/json", "/stream?n=2"] * 5
    raw = raw_exchange(flask_server.port, b"".join(
        b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % p.encode() for p in paths),
        until_close=False, expect=len(paths))
    bodies = [r.body for r in parse_responses(raw)]
    assert bodies == [b"Hello, World!", b'{"message":"Hello, World!"}\n',
                      b"part 0\npart 1\n"] * 5


def test_django_wsgi_project_under_a_root_path() -> None:
    from apps.hosted.django_project import project

    with TestServer(HostedApp(project.wsgi, interface="wsgi")) as running:
        assert httpx.get(running.url + "/hello").text == "Hello from Django"
        r = httpx.post(running.url + "/upload", content=b"y" * 50_000,
                       headers={"content-type": "text/plain"})
        assert r.json() == {"size": 50_000, "type": "text/plain"}


def test_the_loop_keeps_serving_while_every_thread_is_busy() -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/block":
            entered.release()
            release.wait(10)
        start_response("200 OK", [("content-type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    hosted = HostedApp(app, threads=2)
    hosted.get  # noqa: B018 - a HostedApp is an App
    with TestServer(hosted) as running:
        blocked = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(2)]
        for s in blocked:
            s.sendall(b"GET /block HTTP/1.1\r\nHost: a\r\n\r\n")
        assert entered.acquire(timeout=5) and entered.acquire(timeout=5)
        # Both threads are blocked; the loop still accepts, parses and refuses bad input.
        raw = raw_exchange(running.port, b"GET / HTTP/1.1\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 400 ")
        release.set()
        for s in blocked:
            assert s.recv(1000).endswith(b"/block")
            s.close()
        assert httpx.get(running.url + "/after").text == "/after"
