"""Authentication helpers: HTTP Basic, Bearer tokens, API keys and JWTs.

    def check(token):                         # sync or async; anything truthy = the identity
        return USERS_BY_TOKEN.get(token)

    api = app.router("/api", BearerAuth(check))

    @api.get("/me")
    def me(res, req, user):                   # the middleware's data is the identity
        res.end({"name": user.name})

Each helper reads its credentials, calls your ``verify`` callback (a plain function or an
``async def``) and, when it returns something truthy, passes that value on: it becomes the
middleware data (the handler's third argument) and ``req.user``. When the credentials are
missing or ``verify`` returns ``None``/``False``, the request is answered ``401`` with the
``WWW-Authenticate`` challenge of the scheme (RFC 9110 §11.6.1) and the handler is not
called; ``verify`` may also raise ``HTTPError`` itself (e.g. ``Forbidden`` for a known user
without the right). Credentials are never logged or echoed.

With typed handlers, the same objects are dependencies: ``user=Depends(bearer.dependency)``.

* ``BasicAuth(verify(username, password), realm=...)`` — RFC 7617; the challenge asks for
  UTF-8. Over plain HTTP the password travels in clear: use it behind TLS only.
* ``BearerAuth(verify(token), realm=...)`` — RFC 6750: a missing token gets a bare challenge,
  a refused one ``error="invalid_token"``.
* ``APIKeyAuth(verify(key), header="x-api-key" | query="api_key" | cookie="api_key")`` —
  where the key is looked for, in that order among the ones given.
* ``JWTAuth(key, algorithms=["HS256"], audience=None, issuer=None, leeway=0, verify=None)`` —
  a Bearer token checked by PyJWT (``pip install 'corkweb[jwt]'``): signature, ``exp``,
  ``nbf``, and ``aud``/``iss`` when given. The identity is the claims dict, or what ``verify``
  makes of it.
"""

from __future__ import annotations

import base64
import binascii
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import Unauthorized
from ..request import Request
from . import is_async

__all__ = ["BasicAuth", "BearerAuth", "APIKeyAuth", "JWTAuth"]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Auth:
    """The shared part: credentials -> verify -> identity, or 401 with a challenge."""

    scheme = ""
    _verify: Callable[..., Any]

    def __init__(self, verify: Callable[..., Any], realm: str) -> None:
        if not callable(verify):
            raise TypeError(f"{type(self).__name__} needs a verify callable, got {verify!r}")
        if any(c in realm for c in '\r\n"\\'):
            raise ValueError(f"realm {realm!r} must not contain quotes, backslashes or "
                             "line breaks")
        self._verify = verify
        self.realm = realm
        self.verify_is_async = is_async(verify)

    # Subclasses: the credentials as verify's arguments, or None when there are none.
    def credentials(self, req: Any) -> tuple[Any, ...] | None:
        raise NotImplementedError

    def challenge(self, refused: bool) -> str:
        return f"{self.scheme} realm={_quote(self.realm)}"

    def refuse(self, refused: bool) -> Unauthorized:
        what = "were refused" if refused else "are missing"
        return Unauthorized(f"{self.scheme} credentials {what}",
                            [("www-authenticate", self.challenge(refused))])

    def _accept(self, req: Any, identity: Any) -> Any:
        if not identity:
            raise self.refuse(True)
        req.user = identity
        return identity

    # -- middleware ---------------------------------------------------------------------------

    def __call__(self, res: Any, req: Any, data: Any) -> Any:
        credentials = self.credentials(req)
        if credentials is None:
            raise self.refuse(False)
        identity = self._verify(*credentials)
        if inspect.isawaitable(identity):
            return self._finish(req, identity)
        return self._accept(req, identity)

    async def _finish(self, req: Any, pending: Any) -> Any:
        return self._accept(req, await pending)

    # -- typed handlers: Depends(auth.dependency) ----------------------------------------------

    def _dependency_sync(self, req: Request) -> Any:
        credentials = self.credentials(req)
        if credentials is None:
            raise self.refuse(False)
        return self._accept(req, self._verify(*credentials))

    async def _dependency_async(self, req: Request) -> Any:
        credentials = self.credentials(req)
        if credentials is None:
            raise self.refuse(False)
        identity = self._verify(*credentials)
        if inspect.isawaitable(identity):
            identity = await identity
        return self._accept(req, identity)

    @property
    def dependency(self) -> Callable[..., Any]:
        """A provider for ``Depends``: the identity, or 401 (async when ``verify`` is)."""
        return self._dependency_async if self.verify_is_async else self._dependency_sync


class _AsyncCall:
    """Mixed in when ``verify`` is async: the middleware is then an ``async def`` (the app
    composes the route's chain as a coroutine, decided once at start-up)."""

    async def __call__(self, res: Any, req: Any, data: Any) -> Any:
        identity: Any = _Auth.__call__(self, res, req, data)  # type: ignore[arg-type]
        if inspect.isawaitable(identity):
            identity = await identity
        return identity


_async_variants: dict[type, type] = {}


def _variant(cls: type, verify: Any) -> type:
    if not is_async(verify) or issubclass(cls, _AsyncCall):
        return cls
    variant = _async_variants.get(cls)
    if variant is None:
        # __call__ in the class's own dict: that is where is_async() looks for it.
        variant = _async_variants[cls] = type(cls.__name__, (_AsyncCall, cls),
                                              {"__call__": _AsyncCall.__call__})
    return variant


def _authorization(req: Any, scheme: str) -> str | None:
    """The credentials after ``scheme`` in ``Authorization`` (scheme case-insensitive)."""
    for name, value in req.headers:
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            given, _, rest = text.partition(" ")
            if given.lower() == scheme and rest.strip():
                return rest.strip()
            return None
    return None


class BasicAuth(_Auth):
    """HTTP Basic (RFC 7617): ``verify(username, password)`` -> identity or ``None``."""

    scheme = "Basic"

    def __new__(cls, verify: Callable[..., Any], *args: Any, **kwargs: Any) -> BasicAuth:
        return super().__new__(_variant(cls, verify))

    def __init__(self, verify: Callable[[str, str], Any], *, realm: str = "corkweb") -> None:
        super().__init__(verify, realm)

    def credentials(self, req: Any) -> tuple[str, str] | None:
        encoded = _authorization(req, "basic")
        if encoded is None:
            return None
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        username, sep, password = decoded.partition(":")
        return (username, password) if sep else None

    def challenge(self, refused: bool) -> str:
        return f'Basic realm={_quote(self.realm)}, charset="UTF-8"'


class BearerAuth(_Auth):
    """Bearer tokens (RFC 6750): ``verify(token)`` -> identity or ``None``."""

    scheme = "Bearer"

    def __new__(cls, verify: Callable[..., Any], *args: Any, **kwargs: Any) -> BearerAuth:
        return super().__new__(_variant(cls, verify))

    def __init__(self, verify: Callable[[str], Any], *, realm: str = "corkweb") -> None:
        super().__init__(verify, realm)

    def credentials(self, req: Any) -> tuple[str] | None:
        token = _authorization(req, "bearer")
        return None if token is None else (token,)

    def challenge(self, refused: bool) -> str:
        base = f"Bearer realm={_quote(self.realm)}"
        return base + ', error="invalid_token"' if refused else base


class APIKeyAuth(_Auth):
    """API keys: ``verify(key)`` -> identity or ``None``; the key from a header, the query
    string or a cookie (give one or more of ``header``, ``query``, ``cookie``)."""

    scheme = "APIKey"

    def __new__(cls, verify: Callable[..., Any], *args: Any, **kwargs: Any) -> APIKeyAuth:
        return super().__new__(_variant(cls, verify))

    def __init__(self, verify: Callable[[str], Any], *, header: str | None = "x-api-key",
                 query: str | None = None, cookie: str | None = None,
                 realm: str = "corkweb") -> None:
        super().__init__(verify, realm)
        if not (header or query or cookie):
            raise ValueError("APIKeyAuth needs a header, query or cookie name")
        self.header = header.lower() if header else None
        self._header = self.header.encode("latin-1") if self.header else None
        self.query = query
        self.cookie = cookie

    def credentials(self, req: Any) -> tuple[str] | None:
        if self._header is not None:
            for name, value in req.headers:
                if name == self._header:
                    key = value.decode("latin-1").strip()
                    if key:
                        return (key,)
        if self.query is not None:
            key = req.get_query(self.query)
            if key:
                return (key,)
        if self.cookie is not None:
            key = req.get_cookie(self.cookie)
            if key:
                return (key,)
        return None

    def challenge(self, refused: bool) -> str:
        where = [f"{kind}={_quote(name)}" for kind, name in
                 (("header", self.header), ("query", self.query), ("cookie", self.cookie))
                 if name]
        return f"APIKey realm={_quote(self.realm)}, " + ", ".join(where)


class JWTAuth(BearerAuth):
    """A Bearer JWT verified by PyJWT; the identity is the claims (or ``verify(claims)``).

    ``key``: the HMAC secret or the public key (PEM) — or a ``jwt.PyJWKClient``;
    ``algorithms`` are required by PyJWT, never taken from the token; ``audience`` and
    ``issuer`` are checked when given; ``leeway`` in seconds for ``exp``/``nbf``;
    ``required`` claims (default ``["exp"]``: a token without an expiry is refused).
    """

    def __new__(cls, key: Any, *args: Any, **kwargs: Any) -> JWTAuth:
        return object.__new__(_variant(cls, kwargs.get("verify")))

    def __init__(self, key: Any, *, algorithms: Iterable[str] = ("HS256",),
                 audience: str | Iterable[str] | None = None, issuer: str | None = None,
                 leeway: float = 0, required: Iterable[str] = ("exp",),
                 verify: Callable[[dict[str, Any]], Any] | None = None,
                 realm: str = "corkweb") -> None:
        try:
            import jwt
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("JWTAuth needs PyJWT: pip install 'corkweb[jwt]'") from None
        self._jwt = jwt
        self.key = key
        self.algorithms = list(algorithms)
        if not self.algorithms or "none" in (a.lower() for a in self.algorithms):
            raise ValueError("JWTAuth needs signing algorithms, and never 'none'")
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.required = list(required)
        self._then = verify
        super().__init__(self._decode if verify is None else self._decode_then_verify,
                         realm=realm)
        self.verify_is_async = verify is not None and is_async(verify)

    def claims(self, token: str) -> dict[str, Any] | None:
        """The verified claims of ``token``, or ``None`` (bad signature, expired, ...)."""
        jwt = self._jwt
        key = self.key
        try:
            if isinstance(key, jwt.PyJWKClient):
                key = key.get_signing_key_from_jwt(token).key
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=self.algorithms, audience=self.audience,
                issuer=self.issuer, leeway=self.leeway,
                options={"require": self.required})
        except jwt.PyJWTError:
            return None
        return claims

    def _decode(self, token: str) -> Any:
        return self.claims(token)

    def _decode_then_verify(self, token: str) -> Any:
        claims = self.claims(token)
        if claims is None:
            return None
        assert self._then is not None
        return self._then(claims)
