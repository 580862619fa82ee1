"""Request ids and security headers on real sockets; ``req.route`` gives the pattern."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from corkweb import App, HTTPError, RequestID, SecurityHeaders
from corkweb.middleware.security import csp_value
from corkweb.testing import TestServer

HEX32 = re.compile(r"[0-9a-f]{32}")


def make(serve: Callable[..., TestServer], **app_options: Any) -> TestServer:
    app = App(templates=None, **app_options)
    app.use(RequestID())

    @app.get("/items/:id")
    def item(res: Any, req: Any) -> None:
        res.end({"id": req.request_id, "route": req.route})

    @app.get("/fail")
    def fail(res: Any, req: Any) -> None:
        raise RuntimeError("boom")

    return serve(app)


def test_generated_echoed_and_unique(serve: Callable[..., TestServer]) -> None:
    server = make(serve)
    with httpx.Client(base_url=server.url) as c:
        a, b = c.get("/items/1"), c.get("/items/2")
    assert HEX32.fullmatch(a.headers["x-request-id"])
    assert a.json() == {"id": a.headers["x-request-id"], "route": "/items/:id"}
    assert a.headers["x-request-id"] != b.headers["x-request-id"]


def test_client_cannot_choose_its_id_but_a_trusted_proxy_can(
        serve: Callable[..., TestServer]) -> None:
    direct = make(serve)
    r = httpx.get(direct.url + "/items/1", headers={"x-request-id": "forged-id"})
    assert r.headers["x-request-id"] != "forged-id"
    proxied = make(serve, trusted_proxies=["127.0.0.1"])
    r = httpx.get(proxied.url + "/items/1", headers={"x-request-id": "lb-7f3a:1"})
    assert r.headers["x-request-id"] == "lb-7f3a:1" and r.json()["id"] == "lb-7f3a:1"
    # malformed (a space, a quote: log injection material) -> a fresh one
    r = httpx.get(proxied.url + "/items/1", headers={"x-request-id": 'a" b'})
    assert HEX32.fullmatch(r.headers["x-request-id"])


def test_error_answer_and_error_log_carry_the_id(serve: Callable[..., TestServer],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    server = make(serve)
    with caplog.at_level(logging.ERROR, logger="corkweb.error"):
        r = httpx.get(server.url + "/fail")
    assert r.status_code == 500
    rid = r.headers["x-request-id"]
    assert f"unhandled error in handler for GET /fail (request id {rid})" in caplog.text


def test_access_log_field() -> None:
    from corkweb.server.access_log import AccessFormat

    with pytest.raises(ValueError, match="unknown access log field"):
        AccessFormat("{request}")
    AccessFormat("{request_id} {status}")  # accepted


def test_csp_value() -> None:
    assert csp_value({"default-src": "'self'", "img-src": ["'self'", "data:"],
                      "upgrade-insecure-requests": []}) == (
        "default-src 'self'; img-src 'self' data:; upgrade-insecure-requests")
    with pytest.raises(ValueError, match="contains ';'"):
        csp_value({"script-src": "'self'; evil"})
    with pytest.raises(ValueError, match="frame_options"):
        SecurityHeaders(frame_options="ALLOW-FROM https://x")


def test_security_headers(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None, trusted_proxies=["127.0.0.1"])
    secured = app.router("", SecurityHeaders(csp={"default-src": "'self'"}))

    @secured.get("/page")
    def page(res: Any, req: Any) -> None:
        res.end("<p>hi</p>")

    @secured.get("/broken")
    def broken(res: Any, req: Any) -> None:
        raise HTTPError(409, "taken")

    @app.get("/plain")
    def plain(res: Any, req: Any) -> None:
        res.end("plain")

    server = serve(app)
    r = httpx.get(server.url + "/page")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert r.headers["content-security-policy"] == "default-src 'self'"
    assert "strict-transport-security" not in r.headers  # plain HTTP: never (RFC 6797 §7.2)
    r = httpx.get(server.url + "/page", headers={"x-forwarded-proto": "https"})
    assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    r = httpx.get(server.url + "/broken")
    assert r.status_code == 409 and r.headers["x-frame-options"] == "DENY"
    r = httpx.get(server.url + "/plain")
    assert "x-frame-options" not in r.headers  # only the routes that use it
