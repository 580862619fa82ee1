"""CSRF protection: a signed double-submit cookie, plus an ``Origin``/``Referer`` check.

    csrf = CSRF(secret_key="...at least 16 bytes...")
    csrf.install(app)          # app.use(csrf) + the csrf_input()/csrf_token() template globals

    <form method="post">{{ csrf_input() }} ... </form>         (a Jinja template)
    fetch("/api", {method: "POST", headers: {"x-csrf-token": csrfToken}})   (JavaScript)

**Why a signed double-submit cookie, not a synchronizer token in the session.** corkweb's
sessions live in a signed cookie on the client, so "a token stored in the session" would be a
second copy of the same kind of signed cookie — with worse properties: every first visit would
rewrite the session cookie (and its 4 KiB budget), and pages without sessions (a login form, a
public contact form) could not be protected at all. The double-submit cookie gives the same
guarantee on its own: a forged request from another site can make the browser *send* the
cookie (or, with ``SameSite=Lax``, not even that) but cannot *read* it, so it cannot put the
matching value in the form or header. Signing the cookie with the app's secret (HMAC-SHA256)
closes the known hole of plain double-submit: a sibling subdomain that can plant cookies cannot
mint a valid one. The token put into pages is masked with a fresh random pad per render
(``pad + (pad XOR secret)``), so that a compressed HTML page does not repeat a constant secret
(the BREACH attack).

**What is checked** on unsafe methods (anything but GET, HEAD, OPTIONS, TRACE), in this order,
each refusal a ``403`` whose message says which check failed:

1. ``Origin`` (sent by every current browser on cross-origin and on same-origin POSTs): it must
   be this site's own origin (``res.get_scheme()`` + the ``Host`` header) or one of
   ``trusted_origins``. Without ``Origin``, the ``Referer``'s origin is checked the same way;
   over HTTPS a request with neither is refused (browsers always send one of them there, so
   their absence is a stripped request).
2. The cookie: present and correctly signed.
3. The token: the ``x-csrf-token`` header, else the ``csrf_token`` field of an
   ``application/x-www-form-urlencoded`` body, must carry the cookie's secret (a masked token
   from ``csrf_token()``, or the cookie's own value, which the page's JavaScript may read). A
   multipart form must send the header (the body of an upload is streamed once, to the
   handler): for a plain HTML upload form, mark the route exempt and call
   ``csrf.check_token(req, form["csrf_token"])`` after ``await res.get_form()``.

Exemptions: ``CSRF(exempt=["/webhooks/:provider"])`` lists route patterns (``req.route``) that
are not checked (a webhook authenticated by its signature); or add the middleware only to the
route groups that need it.

Cost: the middleware is async (it may read the body), so a route using it runs its chain as a
coroutine; safe requests also pay for one small object. Routes without it pay nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from ..errors import Forbidden

__all__ = ["CSRF", "CSRFToken"]

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))
_RAW = 32  # bytes of secret per visitor
_MAC = 16  # bytes of the HMAC kept in the cookie


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CSRFToken:
    """``req.csrf_token`` on routes that run :class:`CSRF`: ``str(token)`` is a masked token
    for a form field or a ``<meta>`` tag (a new mask each time); ``token.input()`` the hidden
    ``<input>``. The cookie is set on the response if the visitor has none yet."""

    __slots__ = ("_csrf", "_res", "_req", "_raw")

    def __init__(self, csrf: CSRF, res: Any, req: Any) -> None:
        self._csrf = csrf
        self._res = res
        self._req = req
        self._raw: bytes | None = None

    def secret(self) -> bytes:
        """The visitor's secret: from the cookie, or new (and then set as the cookie)."""
        raw = self._raw
        if raw is None:
            raw = self._csrf.cookie_secret(self._req)
            if raw is None:
                raw = os.urandom(_RAW)
                if not self._res.has_responded():
                    self._csrf.set_cookie(self._res, raw)
            self._raw = raw
        return raw

    def __str__(self) -> str:
        raw = self.secret()
        pad = os.urandom(_RAW)
        return _b64(pad + bytes(a ^ b for a, b in zip(pad, raw, strict=True)))

    def input(self) -> Any:
        """``<input type="hidden" name="csrf_token" value="...">`` (safe to output unescaped:
        the value is base64url)."""
        from markupsafe import Markup

        return Markup(f'<input type="hidden" name="{self._csrf.field_name}" value="{self}">')


class CSRF:
    """The middleware; see the module docstring.

    ``secret_key`` (str/bytes of at least 16 bytes, or a list: the first signs, all verify),
    ``cookie_name`` ("csrftoken"), ``header_name`` ("x-csrf-token"), ``field_name``
    ("csrf_token"), ``trusted_origins`` (other origins whose pages may post here, e.g.
    ``["https://app.example"]``), ``exempt`` (route patterns), ``secure`` (True: the cookie is
    sent over HTTPS only), ``samesite`` ("Lax"), ``cookie_max_age`` (one year).
    The cookie is not ``HttpOnly``: JavaScript may read it to fill the header.
    """

    def __init__(self, secret_key: str | bytes | Iterable[str | bytes], *,
                 cookie_name: str = "csrftoken", header_name: str = "x-csrf-token",
                 field_name: str = "csrf_token", trusted_origins: Iterable[str] = (),
                 exempt: Iterable[str] = (), secure: bool = True, samesite: str = "Lax",
                 cookie_max_age: int = 365 * 24 * 3600, path: str = "/",
                 domain: str | None = None) -> None:
        secrets = [secret_key] if isinstance(secret_key, (str, bytes)) else list(secret_key)
        if not secrets:
            raise ValueError("CSRF needs a secret key")
        self._keys = []
        for secret in secrets:
            raw = secret.encode() if isinstance(secret, str) else bytes(secret)
            if len(raw) < 16:
                raise ValueError("a CSRF secret key must be at least 16 bytes")
            self._keys.append(hmac.new(raw, b"corkweb.csrf", hashlib.sha256).digest())
        self.cookie_name = cookie_name
        self.header_name = header_name.lower()
        self._header = self.header_name.encode("latin-1")
        self.field_name = field_name
        self.trusted_origins = frozenset(o.rstrip("/").lower() for o in trusted_origins)
        self.exempt = frozenset(exempt)
        self._cookie_options: dict[str, Any] = {
            "path": path, "secure": secure, "httponly": False, "samesite": samesite,
            "max_age": cookie_max_age}
        if domain is not None:
            self._cookie_options["domain"] = domain

    def install(self, app: Any) -> CSRF:
        """``app.use(self)`` and the template globals ``csrf_input()`` and ``csrf_token()``
        (when the app has templates)."""
        app.use(self)
        try:
            env = app.template_env
        except RuntimeError:
            return self  # no templates: req.csrf_token is all there is
        from jinja2 import pass_context

        @pass_context
        def csrf_token(context: Any) -> str:
            return str(_token_of(context))

        @pass_context
        def csrf_input(context: Any) -> Any:
            return _token_of(context).input()

        env.globals["csrf_token"] = csrf_token
        env.globals["csrf_input"] = csrf_input
        return self

    # -- the cookie ---------------------------------------------------------------------------

    def _mac(self, key: bytes, raw: bytes) -> bytes:
        return hmac.new(key, raw, hashlib.sha256).digest()[:_MAC]

    def set_cookie(self, res: Any, raw: bytes) -> None:
        value = _b64(raw) + "." + _b64(self._mac(self._keys[0], raw))
        res.set_cookie(self.cookie_name, value, self._cookie_options)

    def cookie_secret(self, req: Any) -> bytes | None:
        """The secret of a correctly signed cookie, or ``None``."""
        value = req.get_cookie(self.cookie_name)
        if not value or len(value) > 200:
            return None
        raw_text, _, mac_text = value.partition(".")
        try:
            raw, mac = _unb64(raw_text), _unb64(mac_text)
        except (ValueError, binascii.Error):
            return None
        if len(raw) != _RAW:
            return None
        for key in self._keys:
            if hmac.compare_digest(self._mac(key, raw), mac):
                return raw
        return None

    # -- checks -----------------------------------------------------------------------------

    def check_token(self, req: Any, token: str | None) -> None:
        """Raise ``Forbidden`` unless ``token`` (masked, from a form or header) carries the
        secret of the request's cookie. For handlers that read the form themselves."""
        raw = self.cookie_secret(req)
        if raw is None:
            raise Forbidden("CSRF check failed: the CSRF cookie is missing or invalid (the "
                            "form was not served by this site, or cookies are blocked)")
        if not token:
            raise Forbidden(f"CSRF check failed: no token (send the {self.header_name} "
                            f"header or a {self.field_name} form field)")
        token = token.strip()
        if "." in token:  # the cookie's own value, read by the page's JavaScript
            cookie = req.get_cookie(self.cookie_name) or ""
            if not hmac.compare_digest(token.encode(), cookie.encode()):
                raise Forbidden("CSRF check failed: the token does not match the CSRF cookie")
            return
        try:
            masked = _unb64(token)
        except (ValueError, binascii.Error):
            masked = b""
        if len(masked) != 2 * _RAW:
            raise Forbidden("CSRF check failed: the token is malformed")
        pad, body = masked[:_RAW], masked[_RAW:]
        given = bytes(a ^ b for a, b in zip(pad, body, strict=True))
        if not hmac.compare_digest(given, raw):
            raise Forbidden("CSRF check failed: the token does not match the CSRF cookie")

    def check_origin(self, res: Any, req: Any) -> None:
        """Raise ``Forbidden`` when ``Origin`` (or, without it, ``Referer``) names another
        site than this one or the trusted origins."""
        origin = referer = None
        for name, value in req.headers:
            if name == b"origin":
                origin = value.decode("latin-1").strip()
            elif name == b"referer":
                referer = value.decode("latin-1").strip()
        scheme = res.get_scheme()
        host = (req.get_header("host") or "").strip().lower()
        own = f"{scheme}://{host}"
        if origin is not None:
            origin = origin.rstrip("/").lower()
            if origin != own and origin not in self.trusted_origins:
                raise Forbidden(f"CSRF check failed: cross-site request from origin "
                                f"{origin[:100]!r} (this site is {own!r})")
            return
        if referer:
            parts = urlsplit(referer)
            seen = f"{parts.scheme}://{parts.netloc}".lower()
            if seen != own and seen not in self.trusted_origins:
                raise Forbidden(f"CSRF check failed: cross-site request from a page of "
                                f"{seen[:100]!r} (Referer; this site is {own!r})")
            return
        if scheme == "https":
            raise Forbidden("CSRF check failed: no Origin or Referer header on an HTTPS "
                            "request (browsers send one; something stripped it)")

    async def __call__(self, res: Any, req: Any, data: Any) -> Any:
        req.csrf_token = CSRFToken(self, res, req)
        if req.method in SAFE_METHODS or (self.exempt and req.route in self.exempt):
            return data if data is not None else True
        self.check_origin(res, req)
        token = None
        header = self._header
        for name, value in req.headers:
            if name == header:
                token = value.decode("latin-1")
                break
        if token is None:
            kind = (req.get_header("content-type") or "").split(";", 1)[0].strip().lower()
            if kind == "application/x-www-form-urlencoded":
                token = (await res.get_form_urlencoded()).get(self.field_name)
            elif kind == "multipart/form-data":
                if self.cookie_secret(req) is None:
                    self.check_token(req, None)  # the cookie's absence is the clearer reason
                raise Forbidden(f"CSRF check failed: a multipart form must send the token in "
                                f"the {self.header_name} header (or the route is exempt and "
                                f"its handler calls csrf.check_token)")
        self.check_token(req, token)
        return data if data is not None else True


def _token_of(context: Any) -> CSRFToken:
    req = context.get("request")
    token = getattr(req, "csrf_token", None)
    if not isinstance(token, CSRFToken):
        raise RuntimeError("csrf_input()/csrf_token(): the CSRF middleware does not run for "
                           "this route (app.use(csrf) or add it to the route's group)")
    return token
