"""Signed-cookie sessions on real sockets: round trip, rotation, expiry, and tampered cookies."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from corkweb import App
from corkweb.middleware.sessions import Sessions, get_session
from corkweb.testing import TestServer

KEY = "k" * 32
OLD = "o" * 32


def make(serve: Callable[..., TestServer], sessions: Sessions) -> TestServer:
    app = App(templates=None)
    app.use(sessions)

    @app.post("/login/:name")
    def login(res: Any, req: Any) -> None:
        get_session(req)["user"] = req.get_parameter("name")
        res.end("ok")

    @app.get("/me")
    def me(res: Any, req: Any) -> None:
        res.end({"user": get_session(req).get("user")})

    @app.post("/logout")
    def logout(res: Any, req: Any) -> None:
        get_session(req).clear()
        res.end("bye")

    return serve(app)


@pytest.fixture
def server(serve: Callable[..., TestServer]) -> TestServer:
    return make(serve, Sessions(KEY, secure=False))


def test_round_trip_and_logout(server: TestServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/me").json() == {"user": None}
        r = c.post("/login/ada")
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert c.get("/me").json() == {"user": "ada"}
        assert "set-cookie" not in c.get("/me").headers  # unchanged: not re-sent
        r = c.post("/logout")
        assert "Max-Age=0" in r.headers["set-cookie"]
        assert c.get("/me").json() == {"user": None}


def signed(sessions: Sessions, data: dict[str, Any], now: float | None = None) -> str:
    return sessions.dumps(data, now)


def me(server: TestServer, cookie: str) -> Any:
    value = ("session=" + cookie).encode()  # bytes: hostile values need not be ASCII
    return httpx.get(server.url + "/me", headers={"cookie": value}).json()["user"]


def test_key_rotation(serve: Callable[..., TestServer]) -> None:
    old_cookie = signed(Sessions(OLD), {"user": "bob"})
    server = make(serve, Sessions([KEY, OLD], secure=False))
    r = httpx.get(server.url + "/me", headers={"cookie": "session=" + old_cookie})
    assert r.json() == {"user": "bob"}
    new_cookie = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]  # re-signed
    assert Sessions(KEY).loads(new_cookie)[0] == {"user": "bob"}
    retired = make(serve, Sessions(KEY, secure=False))
    assert me(retired, old_cookie) is None


def test_hostile_cookies_give_an_empty_session(server: TestServer) -> None:
    s = Sessions(KEY)
    good = signed(s, {"user": "ada"})
    payload, stamp, mac = good.split(".")
    forged_payload = signed(Sessions("x" * 32), {"user": "root"}).split(".")[0]
    hostile = [
        forged_payload + "." + stamp + "." + mac,                   # payload swapped
        signed(Sessions("x" * 32), {"user": "root"}),               # unknown key
        payload + "." + stamp + "." + mac[:-2],                     # truncated MAC
        payload + "." + stamp,                                      # missing part
        payload + "." + stamp + "." + mac + ".x",                   # extra part
        "!!!.@@@.###",                                              # not base64
        signed(s, {"user": "old"}, now=time.time() - 30 * 24 * 3600),  # expired
        signed(s, {"user": "future"}, now=time.time() + 3600),         # from the future
        "a" * 5000,                                                 # oversized
        "",
        "é%00",
        "%ff%fe.%00.%zz",
    ]
    for cookie in hostile:
        assert me(server, cookie) is None, cookie
    for value in (b"[1,2]", b"not json", b'"str"'):
        import base64
        import hashlib
        import hmac

        p = base64.urlsafe_b64encode(value).rstrip(b"=")
        st = base64.urlsafe_b64encode(int(time.time()).to_bytes(8, "big")).rstrip(b"=")
        key = hmac.new(KEY.encode(), b"corkweb.session", hashlib.sha256).digest()
        m = base64.urlsafe_b64encode(hmac.new(key, b"session|" + p + b"|" + st,
                                              hashlib.sha256).digest()).rstrip(b"=")
        assert me(server, (p + b"." + st + b"." + m).decode()) is None  # signed, not a dict
    assert me(server, good) == "ada"


def test_oversized_session_is_a_loud_error(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)
    app.use(Sessions(KEY))

    @app.get("/big")
    def big(res: Any, req: Any) -> None:
        get_session(req)["blob"] = "x" * 5000
        res.end("never")

    r = httpx.get(serve(app).url + "/big")
    assert r.status_code == 500


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Sessions("short")
    with pytest.raises(ValueError, match="at least one"):
        Sessions([])
    app = App(templates=None)

    @app.get("/")
    def home(res: Any, req: Any) -> None:
        get_session(req)

    with pytest.raises(RuntimeError, match="no session"):
        get_session(type("R", (), {"context": {}})())
