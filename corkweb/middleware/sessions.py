"""Signed-cookie sessions (optional middleware).

    sessions = Sessions(secret_key=["new-key", "old-key"])    # first signs, all verify
    app.use(sessions)

    @app.post("/login")
    def login(res, req):
        session = get_session(req)
        session["user"] = "ada"                                 # saved in a signed cookie

The session is a JSON object (orjson) carried by the client in one cookie::

    base64url(json) "." base64url(issued-at, 8 bytes) "." base64url(HMAC-SHA256)

The MAC covers the cookie name, the payload and the time, with a key derived from the secret
(``HMAC(secret, "corkweb.session")``), and is checked with ``hmac.compare_digest``. Key
rotation: pass several secrets; the first signs, any of them verifies, and a session signed
with an old key is re-signed with the new one on its next change. A cookie older than
``max_age`` (14 days), tampered with, signed with an unknown key, malformed, or not a JSON
object gives an empty session — never an error, since any client can send any bytes.

The data is signed, not encrypted: the client can read it. Keep secrets out of it. The cookie
is written only when the session changed (``modified``), just before the response head.
A session that encodes to more than 4 KiB raises ``ValueError`` (browsers drop such cookies
silently; corkweb refuses loudly, and the handler's answer becomes a logged 500).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["Sessions", "Session", "get_session"]

_KEY = "corkweb.session"
MAX_COOKIE = 4096


class Session(dict):
    """The session data (a dict) with a ``modified`` flag; ``clear()`` ends the session."""

    modified = False
    was_empty = True

    def __setitem__(self, key: str, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.modified = True
        super().__delitem__(key)

    def clear(self) -> None:
        self.modified = True
        super().clear()

    def pop(self, *args: Any) -> Any:
        self.modified = True
        return super().pop(*args)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self.modified = True
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.modified = True
        super().update(*args, **kwargs)

    def popitem(self) -> tuple[Any, Any]:
        self.modified = True
        return super().popitem()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def get_session(req: Any) -> Session:
    """The session of ``req`` (the :class:`Sessions` middleware must run for the route)."""
    session = req.context.get(_KEY)
    if session is None:
        raise RuntimeError("no session: add the Sessions middleware (app.use(Sessions(...)))")
    return session


class Sessions:
    """The middleware. ``secret_key`` (str/bytes, or a list for rotation, first signs),
    ``cookie_name`` ("session"), ``max_age`` (seconds, 14 days; ``None``: a browser-session
    cookie with no expiry check), ``path`` ("/"), ``domain``, ``secure`` (True), ``httponly``
    (True), ``samesite`` ("Lax")."""

    def __init__(self, secret_key: str | bytes | Iterable[str | bytes], *,
                 cookie_name: str = "session", max_age: int | None = 14 * 24 * 3600,
                 path: str = "/", domain: str | None = None, secure: bool = True,
                 httponly: bool = True, samesite: str = "Lax") -> None:
        secrets = [secret_key] if isinstance(secret_key, (str, bytes)) else list(secret_key)
        if not secrets:
            raise ValueError("Sessions needs at least one secret key")
        keys = []
        for secret in secrets:
            raw = secret.encode() if isinstance(secret, str) else bytes(secret)
            if len(raw) < 16:
                raise ValueError("a session secret key must be at least 16 bytes")
            keys.append(hmac.new(raw, _KEY.encode(), hashlib.sha256).digest())
        self._keys = keys
        self.cookie_name = cookie_name
        self.max_age = max_age
        self._cookie_options: dict[str, Any] = {
            "path": path, "secure": secure, "httponly": httponly, "samesite": samesite}
        if domain is not None:
            self._cookie_options["domain"] = domain

    def _mac(self, key: bytes, payload: bytes, stamp: bytes) -> bytes:
        msg = self.cookie_name.encode() + b"|" + payload + b"|" + stamp
        return hmac.new(key, msg, hashlib.sha256).digest()

    def dumps(self, data: dict[str, Any], now: float | None = None) -> str:
        """The signed cookie value for ``data``."""
        payload = _b64(orjson.dumps(data))
        stamp = _b64(int(now if now is not None else time.time()).to_bytes(8, "big"))
        mac = _b64(self._mac(self._keys[0], payload, stamp))
        value = (payload + b"." + stamp + b"." + mac).decode("ascii")
        if len(value) + len(self.cookie_name) > MAX_COOKIE - 100:
            raise ValueError(f"session too large for a cookie ({len(value)} bytes); "
                             "store big data server-side and keep only its id in the session")
        return value

    def loads(self, value: str, now: float | None = None) -> tuple[dict[str, Any], bool]:
        """``(data, signed_with_current_key)``; ``({}, False)`` for anything not trustworthy."""
        if len(value) > MAX_COOKIE:
            return {}, False
        try:
            payload, stamp, mac = value.encode("ascii").split(b".")
            given = _unb64(mac)
            issued = int.from_bytes(_unb64(stamp), "big")
        except (ValueError, UnicodeEncodeError):
            return {}, False
        matched = [i for i, key in enumerate(self._keys)
                   if hmac.compare_digest(self._mac(key, payload, stamp), given)]
        if not matched:
            return {}, False
        if self.max_age is not None:
            age = (now if now is not None else time.time()) - issued
            if age > self.max_age or age < -60:
                return {}, False
        try:
            data = orjson.loads(_unb64(payload))
        except (ValueError, orjson.JSONDecodeError):
            return {}, False
        if not isinstance(data, dict):
            return {}, False
        return data, matched[0] == 0

    def __call__(self, res: Any, req: Any, data: Any) -> Any:
        # PERF: most requests of anonymous visitors carry no cookie at all; looking at the raw
        # header names first skips building the headers dict for them (~8k instructions).
        raw = None
        for name, _ in req.headers:
            if name == b"cookie":
                raw = req.get_cookie(self.cookie_name)
                break
        session = Session()
        if raw:
            loaded, current = self.loads(raw)
            if loaded:
                dict.update(session, loaded)
                session.was_empty = False
                if not current:
                    session.modified = True  # re-sign with the newest key
        req.context[_KEY] = session
        res.before_head(self._save)
        return data if data is not None else True

    def _save(self, res: Any) -> None:
        session: Session = res.request.context[_KEY]
        if not session.modified:
            return
        options = dict(self._cookie_options)
        if not session:
            if session.was_empty:
                return
            res.set_cookie(self.cookie_name, "", {**options, "max_age": 0})
            return
        if self.max_age is not None:
            options["max_age"] = self.max_age
        res.set_cookie(self.cookie_name, self.dumps(session), options)
