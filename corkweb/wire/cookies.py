"""Cookies on the wire: parsing a ``Cookie`` header and building ``Set-Cookie`` lines (RFC 6265)."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import formatdate
from urllib.parse import quote, unquote

from .writer import token_ok

__all__ = ["cookie_line", "parse_cookies"]


def parse_cookies(header: str) -> dict[str, str]:
    """``"a=1; b=hello%20world"`` → ``{"a": "1", "b": "hello world"}``.

    Tolerant like browsers are: pairs without ``=`` are skipped, surrounding double quotes are
    removed, values are percent-decoded, and the first of two cookies with one name wins (the
    browser sends the most specific path first, RFC 6265 §5.4).
    """
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, eq, value = pair.partition("=")
        if not eq:
            continue
        name = name.strip()
        if not name or name in cookies:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies[name] = unquote(value) if "%" in value else value
    return cookies


# cookie-octet (RFC 6265 §4.1.1) minus "%", which must be encoded for values to round-trip.
_COOKIE_SAFE = "!#$&'()*+/:<=>?@[]^`{|}"
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


def cookie_line(
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    expires: datetime | int | float | str | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = False,
    samesite: str | None = None,
    partitioned: bool = False,
) -> bytes:
    """A ``set-cookie`` header line (RFC 6265 §4.1).

    The value is percent-encoded where it holds characters a cookie-octet may not, so any
    string round-trips through :func:`urllib.parse.unquote`. ``SameSite=None`` requires
    ``secure`` (browsers drop the cookie otherwise), so it is refused without it.
    """
    if not name or not token_ok(name):
        raise ValueError(f"invalid cookie name {name!r}")
    parts = [f"{name}={quote(value, safe=_COOKIE_SAFE)}"]
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if expires is not None:
        if isinstance(expires, datetime):
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=timezone.utc)
            expires = formatdate(expires.timestamp(), usegmt=True)
        elif isinstance(expires, (int, float)):
            expires = formatdate(expires, usegmt=True)
        parts.append(f"Expires={expires}")
    for label, attr in (("Path", path), ("Domain", domain)):
        if attr:
            if any(c in attr for c in ";\r\n\x00"):
                raise ValueError(f"invalid cookie {label} {attr!r}")
            parts.append(f"{label}={attr}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite is not None:
        canonical = _SAMESITE.get(samesite.lower())
        if canonical is None:
            raise ValueError(f"SameSite must be Strict, Lax or None, got {samesite!r}")
        if canonical == "None" and not secure:
            raise ValueError("SameSite=None requires secure=True")
        parts.append(f"SameSite={canonical}")
    if partitioned:
        parts.append("Partitioned")
    return b"set-cookie: " + "; ".join(parts).encode("latin-1") + b"\r\n"
