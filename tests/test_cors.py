"""CORS middleware on real sockets: preflights, credentials, origin lists and rules, hostile
origins and headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import parse_responses, raw_exchange

from corkweb import App, HTTPError
from corkweb.middleware.cors import CORS
from corkweb.testing import TestServer

GOOD = "https://app.example"


def make(serve: Callable[..., TestServer], cors: CORS) -> TestServer:
    app = App(templates=None)
    cors.install(app)

    @app.get("/data")
    def data(res: Any, req: Any) -> None:
        res.write_header("x-total", "3").end({"ok": True})

    @app.put("/data")
    def put(res: Any, req: Any) -> None:
        res.end("put")

    @app.get("/fail")
    def fail(res: Any, req: Any) -> None:
        raise HTTPError(409, "conflict")

    return serve(app)


@pytest.fixture
def server(serve: Callable[..., TestServer]) -> TestServer:
    return make(serve, CORS([GOOD], allow_headers=["content-type", "x-token"],
                            expose_headers=["x-total"], allow_credentials=True, max_age=30))


def preflight(server: TestServer, origin: str, method: str = "PUT",
              headers: str | None = None, path: str = "/data") -> httpx.Response:
    h = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        h["access-control-request-headers"] = headers
    return httpx.options(server.url + path, headers=h)


def test_preflight_allowed(server: TestServer) -> None:
    r = preflight(server, GOOD, headers="Content-Type, X-Token")
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == GOOD
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "PUT" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "content-type, x-token"
    assert r.headers["access-control-max-age"] == "30"
    assert r.headers["vary"] == "origin"


@pytest.mark.parametrize("origin,method,headers,why", [
    ("https://evil.example", "PUT", None, "origin"),
    (GOOD, "TRACE", None, "method"),
    (GOOD, "PUT", "x-secret", "header"),
    (GOOD, "PUT", "bad header", "malformed"),
    ("https://app.example.evil.example", "GET", None, "origin"),
    ("null", "GET", None, "origin"),
    ("https://app.example/", "GET", None, "origin"),
    ("javascript:alert(1)", "GET", None, "origin"),
])
def test_preflight_refused(server: TestServer, origin: str, method: str, headers: str | None,
                           why: str) -> None:
    r = preflight(server, origin, method, headers)
    assert r.status_code == 400 and why in r.text
    assert "access-control-allow-origin" not in r.headers


def test_simple_request_from_allowed_origin(server: TestServer) -> None:
    r = httpx.get(server.url + "/data", headers={"origin": GOOD})
    assert r.json() == {"ok": True}
    assert r.headers["access-control-allow-origin"] == GOOD
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-expose-headers"] == "x-total"
    assert r.headers["vary"] == "origin"


def test_error_answers_carry_cors_headers(server: TestServer) -> None:
    r = httpx.get(server.url + "/fail", headers={"origin": GOOD})
    assert r.status_code == 409 and r.headers["access-control-allow-origin"] == GOOD


def test_other_origin_gets_nothing_but_vary(server: TestServer) -> None:
    r = httpx.get(server.url + "/data", headers={"origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert r.headers["vary"] == "origin"
    r = httpx.get(server.url + "/data")  # no Origin: not a CORS request
    assert "access-control-allow-origin" not in r.headers and "vary" not in r.headers


def test_plain_options_without_preflight_headers(server: TestServer) -> None:
    r = httpx.options(server.url + "/data")
    assert r.status_code == 204 and "OPTIONS" in r.headers["allow"]


def test_hostile_origin_bytes_are_not_reflected(server: TestServer) -> None:
    for origin in (b"https://app.example\x0bx", b"https://a b", b"\xff\xfe", b"https://" + b"a" * 9000):
        raw = raw_exchange(server.port, b"GET /data HTTP/1.1\r\nhost: x\r\norigin: " + origin +
                           b"\r\nconnection: close\r\n\r\n")
        (resp,) = parse_responses(raw)
        assert resp.status in (200, 400, 431) and resp.header("access-control-allow-origin") is None


def test_wildcard_and_rule(serve: Callable[..., TestServer]) -> None:
    with pytest.raises(ValueError, match="credentials"):
        CORS("*", allow_credentials=True)
    server = make(serve, CORS("*", allow_headers="*"))
    r = httpx.get(server.url + "/data", headers={"origin": "https://any.example"})
    assert r.headers["access-control-allow-origin"] == "*" and "vary" not in r.headers
    r = preflight(server, "https://any.example", headers="x-whatever")
    assert r.status_code == 204 and r.headers["access-control-allow-headers"] == "x-whatever"
    ruled = make(serve, CORS(lambda o: o.endswith(".good.example")))
    r = httpx.get(ruled.url + "/data", headers={"origin": "https://a.good.example"})
    assert r.headers["access-control-allow-origin"] == "https://a.good.example"
    r = httpx.get(ruled.url + "/data", headers={"origin": "https://bad.example"})
    assert "access-control-allow-origin" not in r.headers
