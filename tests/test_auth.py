"""Authentication helpers on real sockets: Basic, Bearer, API keys, JWT (PyJWT), sync and
async verification, the identity reaching the handler, 401 challenges, typed dependencies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest

from corkweb import APIKeyAuth, App, BasicAuth, BearerAuth, Depends, Forbidden, JWTAuth
from corkweb.testing import TestServer

TOKENS = {"t-ada": {"name": "ada"}, "t-bob": {"name": "bob", "banned": True}}


def check_password(username: str, password: str) -> Any:
    return {"name": username} if password == "s3cret" else None


def check_token(token: str) -> Any:
    user = TOKENS.get(token)
    if user and user.get("banned"):
        raise Forbidden("this account is suspended")
    return user


async def check_token_async(token: str) -> Any:
    await asyncio.sleep(0)  # a database round trip would be here
    return TOKENS.get(token)


def me(res: Any, req: Any, user: Any) -> None:
    res.end({"user": user["name"], "same": req.user is user})


def build() -> App:
    app = App(templates=None)
    app.router("/basic", BasicAuth(check_password, realm="staff")).get("/me", me)
    app.router("/bearer", BearerAuth(check_token)).get("/me", me)
    app.router("/async", BearerAuth(check_token_async)).get("/me", me)
    app.router("/key", APIKeyAuth(lambda key: TOKENS.get(key), header="x-api-key",
                                  query="api_key", cookie="api_key")).get("/me", me)
    return app


@pytest.fixture
def server(serve: Callable[..., TestServer]) -> TestServer:
    return serve(build())


def test_basic(server: TestServer) -> None:
    r = httpx.get(server.url + "/basic/me", auth=("ada", "s3cret"))
    assert r.json() == {"user": "ada", "same": True}
    r = httpx.get(server.url + "/basic/me")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Basic realm="staff", charset="UTF-8"'
    assert "Basic credentials are missing" in r.text
    r = httpx.get(server.url + "/basic/me", auth=("ada", "wrong"))
    assert r.status_code == 401 and "refused" in r.text and "wrong" not in r.text
    r = httpx.get(server.url + "/basic/me", headers={"authorization": "Basic !!notbase64"})
    assert r.status_code == 401


@pytest.mark.parametrize("prefix", ["/bearer", "/async"])
def test_bearer_sync_and_async(server: TestServer, prefix: str) -> None:
    url = server.url + prefix + "/me"
    r = httpx.get(url, headers={"authorization": "Bearer t-ada"})
    assert r.json() == {"user": "ada", "same": True}
    r = httpx.get(url, headers={"authorization": "bearer t-ada"})  # scheme: any case
    assert r.status_code == 200
    r = httpx.get(url)
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="corkweb"'
    r = httpx.get(url, headers={"authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="corkweb", error="invalid_token"'
    r = httpx.get(url, headers={"authorization": "Basic dTpw"})
    assert r.status_code == 401


def test_verify_may_refuse_with_its_own_error(server: TestServer) -> None:
    r = httpx.get(server.url + "/bearer/me", headers={"authorization": "Bearer t-bob"})
    assert r.status_code == 403 and "suspended" in r.text


def test_api_key_in_header_query_or_cookie(server: TestServer) -> None:
    url = server.url + "/key/me"
    assert httpx.get(url, headers={"x-api-key": "t-ada"}).json()["user"] == "ada"
    assert httpx.get(url, params={"api_key": "t-ada"}).json()["user"] == "ada"
    assert httpx.get(url, headers={"cookie": "api_key=t-ada"}).json()["user"] == "ada"
    r = httpx.get(url)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == (
        'APIKey realm="corkweb", header="x-api-key", query="api_key", cookie="api_key"')


def test_jwt(serve: Callable[..., TestServer]) -> None:
    jwt = pytest.importorskip("jwt")
    key = "jwt-secret-key-of-at-least-32-bytes!"
    app = App(templates=None)
    auth = JWTAuth(key, audience="shop", issuer="https://id.example")
    app.router("", auth).get("/claims", lambda res, req, claims: res.end(claims))
    server = serve(app)

    def token(**changes: Any) -> str:
        claims = {"sub": "ada", "aud": "shop", "iss": "https://id.example",
                  "exp": int(time.time()) + 60, **changes}
        return str(jwt.encode({k: v for k, v in claims.items() if v is not None}, key,
                              algorithm="HS256"))

    def get(tok: str) -> httpx.Response:
        return httpx.get(server.url + "/claims", headers={"authorization": f"Bearer {tok}"})

    assert get(token()).json()["sub"] == "ada"
    for bad in (token(exp=int(time.time()) - 10), token(aud="other"), token(iss="evil"),
                token(exp=None), jwt.encode({"sub": "x", "exp": int(time.time()) + 60},
                                            "another-key-of-32-bytes-or-more!!", "HS256"),
                jwt.encode({"sub": "ada", "aud": "shop", "iss": "https://id.example",
                            "exp": int(time.time()) + 60}, None, "none"), "not.a.jwt"):
        r = get(str(bad))
        assert r.status_code == 401, bad
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    with pytest.raises(ValueError, match="never 'none'"):
        JWTAuth(key, algorithms=["none"])


def test_jwt_with_async_verify(serve: Callable[..., TestServer]) -> None:
    jwt = pytest.importorskip("jwt")
    key = "jwt-secret-key-of-at-least-32-bytes!"

    async def load_user(claims: dict[str, Any]) -> Any:
        await asyncio.sleep(0)
        return {"name": claims["sub"]} if claims["sub"] != "mallory" else None

    app = App(templates=None)
    app.router("", JWTAuth(key, verify=load_user)).get("/me", me)
    server = serve(app)

    def get(sub: str) -> httpx.Response:
        tok = jwt.encode({"sub": sub, "exp": int(time.time()) + 60}, key, "HS256")
        return httpx.get(server.url + "/me", headers={"authorization": f"Bearer {tok}"})

    assert get("ada").json() == {"user": "ada", "same": True}
    assert get("mallory").status_code == 401


# Module level: the typed handlers' annotations are resolved from the module.
bearer = BearerAuth(check_token)
async_bearer = BearerAuth(check_token_async)


def test_typed_dependency(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)

    @app.get("/typed")
    def typed(user: Annotated[dict, Depends(bearer.dependency)]) -> dict:
        return {"user": user["name"]}

    @app.get("/typed-async")
    async def typed_async(user: Annotated[dict, Depends(async_bearer.dependency)]) -> dict:
        return {"user": user["name"]}

    server = serve(app)
    for path in ("/typed", "/typed-async"):
        r = httpx.get(server.url + path, headers={"authorization": "Bearer t-ada"})
        assert r.json() == {"user": "ada"}
        r = httpx.get(server.url + path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_settings_are_checked() -> None:
    with pytest.raises(TypeError, match="needs a verify callable"):
        BearerAuth("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="realm"):
        BasicAuth(check_password, realm='a"b')
    with pytest.raises(ValueError, match="header, query or cookie"):
        APIKeyAuth(check_token, header=None)
