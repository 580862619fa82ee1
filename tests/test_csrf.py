"""CSRF: the signed double-submit cookie and the Origin/Referer check on real sockets."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from corkweb import CSRF, App
from corkweb.testing import TestServer

KEY = "c" * 32
PAGE = """<form method="post" action="/transfer">{{ csrf_input() }}<input name="amount">
<button>Send</button></form><meta name="csrf-token" content="{{ csrf_token() }}">"""


def make_app(tmp_path: Path, **options: Any) -> App:
    (tmp_path / "form.html").write_text(PAGE)
    app = App(templates=tmp_path)
    csrf = CSRF(KEY, secure=False, exempt=["/hooks/:provider"], **options)
    csrf.install(app)

    @app.get("/form")
    def form(res: Any, req: Any) -> None:
        res.render("form.html")

    @app.post("/transfer")
    async def transfer(res: Any, req: Any) -> None:
        form = await res.get_form_urlencoded()  # still readable after the middleware read it
        res.end(f"sent {form['amount']}")

    @app.post("/hooks/:provider")
    def hook(res: Any, req: Any) -> None:
        res.end("hook ok")

    @app.post("/upload")
    async def upload(res: Any, req: Any) -> None:
        res.end("uploaded")

    return app


@pytest.fixture
def server(serve: Callable[..., TestServer], tmp_path: Path) -> TestServer:
    return serve(make_app(tmp_path))


def page_token(client: httpx.Client) -> tuple[str, str]:
    html = client.get("/form").text
    field = re.search(r'name="csrf_token" value="([^"]+)"', html)
    meta = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert field and meta
    return field.group(1), meta.group(1)


def test_own_form_posts(server: TestServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        field, meta = page_token(c)
        assert field != meta  # masked afresh on each use (BREACH)
        cookie = c.cookies["csrftoken"]
        r = c.post("/transfer", data={"amount": "10", "csrf_token": field},
                   headers={"origin": server.url})
        assert r.status_code == 200 and r.text == "sent 10"
        # the same secret through the header, masked or as the cookie's own value (JS)
        for token in (meta, cookie):
            r = c.post("/transfer", data={"amount": "5"}, headers={"x-csrf-token": token})
            assert r.text == "sent 5"


def test_refusals_say_why(server: TestServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        field, _ = page_token(c)
        r = c.post("/transfer", data={"amount": "1", "csrf_token": field},
                   headers={"origin": "https://evil.example"})
        assert r.status_code == 403 and "cross-site request from origin" in r.text
        r = c.post("/transfer", data={"amount": "1", "csrf_token": field},
                   headers={"referer": "https://evil.example/page"})
        assert r.status_code == 403 and "Referer" in r.text
        r = c.post("/transfer", data={"amount": "1"})
        assert r.status_code == 403 and "no token" in r.text
        r = c.post("/transfer", data={"amount": "1", "csrf_token": "x" * 86})
        assert r.status_code == 403 and "does not match" in r.text
        r = c.post("/transfer", data={"amount": "1", "csrf_token": "!!"})
        assert r.status_code == 403 and "malformed" in r.text
        r = c.post("/upload", files={"f": ("a.txt", b"data")})
        assert r.status_code == 403 and "multipart form must send the token" in r.text
        r = c.post("/upload", files={"f": ("a.txt", b"data")}, headers={"x-csrf-token": field})
        assert r.status_code == 200
    # a token of another visitor (another cookie) does not fit this one's cookie
    with httpx.Client(base_url=server.url) as other:
        page_token(other)
        r = other.post("/transfer", data={"amount": "1", "csrf_token": field})
        assert r.status_code == 403 and "does not match" in r.text
    # no cookie at all; a forged (unsigned) cookie
    r = httpx.post(server.url + "/transfer", data={"amount": "1", "csrf_token": field})
    assert r.status_code == 403 and "cookie is missing or invalid" in r.text
    forged = "A" * 43 + "." + "A" * 22
    r = httpx.post(server.url + "/transfer", data={"amount": "1", "csrf_token": forged},
                   headers={"cookie": f"csrftoken={forged}"})
    assert r.status_code == 403 and "cookie is missing or invalid" in r.text


def test_exempt_route_and_safe_methods(server: TestServer) -> None:
    assert httpx.post(server.url + "/hooks/github", content=b"{}").text == "hook ok"
    assert httpx.get(server.url + "/form").status_code == 200


def test_trusted_origin(serve: Callable[..., TestServer], tmp_path: Path) -> None:
    server = serve(make_app(tmp_path, trusted_origins=["https://app.example"]))
    with httpx.Client(base_url=server.url) as c:
        field, _ = page_token(c)
        r = c.post("/transfer", data={"amount": "3", "csrf_token": field},
                   headers={"origin": "https://app.example"})
        assert r.text == "sent 3"


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        CSRF("short")
