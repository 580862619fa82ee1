"""Compression middleware on real sockets: gzip (and brotli when installed), minimum size,
content types, q-values, and never for compressed, streamed or SSE bodies."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import parse_responses, raw_exchange

from corkweb import App
from corkweb.middleware.compression import Compression, brotli_available, parse_accept_encoding
from corkweb.sse import EventStream
from corkweb.testing import TestServer

TEXT = "corkweb " * 200


@pytest.fixture
def server(serve: Callable[..., TestServer]) -> TestServer:
    app = App(templates=None)
    app.use(Compression(minimum_size=500))

    @app.get("/text")
    def text(res: Any, req: Any) -> None:
        res.write_header("etag", '"v1"').end(TEXT)

    @app.get("/json")
    def json_(res: Any, req: Any) -> None:
        res.end({"items": list(range(500))})

    @app.get("/small")
    def small(res: Any, req: Any) -> None:
        res.end("tiny")

    @app.get("/png")
    def png(res: Any, req: Any) -> None:
        res.write_header("content-type", "image/png").end(b"\x89PNG" + b"\0" * 2000)

    @app.get("/already")
    def already(res: Any, req: Any) -> None:
        res.write_header("content-encoding", "gzip").write_header("content-type", "text/plain")
        res.end(gzip.compress(TEXT.encode()))

    @app.get("/stream")
    def stream(res: Any, req: Any) -> None:
        res.write_header("content-type", "text/plain")
        res.write(TEXT)
        res.end(TEXT)

    @app.get("/sse")
    async def sse(res: Any, req: Any) -> None:
        async with EventStream(res, req) as events:
            await events.send(TEXT)

    @app.get("/sse-end")
    def sse_end(res: Any, req: Any) -> None:
        res.write_header("content-type", "text/event-stream").end("data: " + TEXT + "\n\n")

    @app.get("/nothing")
    def nothing(res: Any, req: Any) -> None:
        res.write_status(304).end()

    return serve(app)


def raw_get(server: TestServer, path: str, accept: str | None = "gzip") -> Any:
    head = f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
    if accept is not None:
        head += f"accept-encoding: {accept}\r\n"
    (resp,) = parse_responses(raw_exchange(server.port, (head + "\r\n").encode()))
    return resp


def test_gzip_text_and_json(server: TestServer) -> None:
    resp = raw_get(server, "/text")
    assert resp.header("content-encoding") == "gzip" and resp.header("vary") == "accept-encoding"
    assert gzip.decompress(resp.body).decode() == TEXT
    assert int(resp.header("content-length")) == len(resp.body) < len(TEXT)
    assert resp.header("etag") == 'W/"v1"'  # no longer byte-identical to the identity body
    r = httpx.get(server.url + "/json")  # httpx sends gzip, deflate[, br]
    assert r.headers["content-encoding"] in ("gzip", "br") and r.json()["items"][-1] == 499


def test_not_compressed_without_accept_encoding_but_varies(server: TestServer) -> None:
    for accept in (None, "identity", "gzip;q=0", "br", "*;q=0", "gzip;q=nan", "gzip;q=2"):
        resp = raw_get(server, "/text", accept)
        if accept == "br" and brotli_available():
            continue
        assert resp.header("content-encoding") is None and resp.body == TEXT.encode(), accept
        assert resp.header("vary") == "accept-encoding"
    assert raw_get(server, "/text", "*").header("content-encoding") is not None


@pytest.mark.parametrize("path", ["/small", "/png", "/stream", "/sse", "/sse-end", "/nothing"])
def test_left_alone(server: TestServer, path: str) -> None:
    resp = raw_get(server, path)
    assert resp.header("content-encoding") is None, path
    assert resp.header("vary") is None, path


def test_already_encoded_is_not_compressed_twice(server: TestServer) -> None:
    resp = raw_get(server, "/already")
    assert resp.header("content-encoding") == "gzip"
    assert gzip.decompress(resp.body).decode() == TEXT


def test_head_matches_get(server: TestServer) -> None:
    get = raw_get(server, "/text")
    raw = raw_exchange(server.port, b"HEAD /text HTTP/1.1\r\nhost: x\r\naccept-encoding: gzip\r\n"
                       b"connection: close\r\n\r\n")
    head = raw.decode("latin-1")
    assert f"content-length: {get.header('content-length')}" in head and head.endswith("\r\n\r\n")


def test_parse_accept_encoding() -> None:
    assert parse_accept_encoding("gzip;q=0.5, BR , x;q=abc") == {"gzip": 0.5, "br": 1.0, "x": 0.0}
    assert parse_accept_encoding("," * 10_000) == {}
    c = Compression(brotli=False)
    assert c.choose("br, gzip;q=0.1") == "gzip" and c.choose("deflate") is None


@pytest.mark.skipif(not brotli_available(), reason="brotli is not installed")
def test_brotli_preferred(server: TestServer) -> None:
    import brotli

    resp = raw_get(server, "/text", "gzip, br")
    assert resp.header("content-encoding") == "br" and brotli.decompress(resp.body) == TEXT.encode()
