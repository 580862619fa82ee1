"""Redirect targets: which ``Location`` values are sent, and which count as same-site paths.

A redirect to a target taken from the request (``?next=/account`` after a login) is an open
redirect unless the target is checked, and hand-written checks miss what browsers do with a
URL before following it (WHATWG URL standard, "basic URL parser"): they strip leading and
trailing C0 controls and spaces, remove every tab and newline anywhere, and read ``\\`` as
``/`` in http(s) URLs. So ``/\\evil.example`` and ``/<TAB>/evil.example`` both become
``//evil.example``, a scheme-relative URL to another site.

:func:`same_site_path` accepts only a path on this site, refusing all of that: controls
anywhere (C0, DEL, C1), whitespace, backslashes, a second ``/`` right after the first, a
scheme or an authority, and the same tricks once percent-decoded (``/%2F/evil.example``,
``/%5Cevil.example``, ``/%09/evil``), which a later hop that decodes the path would follow.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

__all__ = ["same_site_path", "check_location"]

# Decode at most this many layers of percent-encoding (%252F -> %2F -> /); a target that is
# still changing after that is refused rather than trusted.
_MAX_DECODE = 4


def _bad_char(text: str, space: bool) -> str | None:
    """The first character a browser would drop or reinterpret, or ``None`` (a space is
    refused unless ``space``: ``%20`` in a path is fine, a raw space in a Location is not)."""
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or ch == "\\" or (code == 0x20 and not space):
            return ch
        # Non-ASCII: C1 controls, format characters (zero-width, bidi), separators.
        if code >= 0x80 and unicodedata.category(ch)[0] in "CZ":
            return ch
    return None


def _path_problem(text: str, decoded: bool) -> str | None:
    """Why ``text`` is not a same-site absolute path, or ``None`` if it is one."""
    bad = _bad_char(text, space=decoded)
    if bad is not None:
        return f"it contains {bad!r}"
    if not text.startswith("/"):
        return "it does not start with '/'"
    if text.startswith("//"):
        return "it is scheme-relative ('//host')"
    parts = urlsplit(text)
    if parts.scheme or parts.netloc:
        return "it names a scheme or a host"
    return None


def same_site_path(target: str | None, default: str | None = None) -> str | None:
    """``target`` if it is a path on this site (``/account?tab=1``), else ``default``.

    Refused: anything not starting with exactly one ``/``; any control character, whitespace
    or backslash; a scheme or host; and the same once percent-decoded. Use it for redirect
    targets taken from the request::

        res.redirect(same_site_path(req.get_query("next"), "/"))

    ``res.redirect(target, safe=True)`` applies the same check and answers 400 instead.
    """
    if not isinstance(target, str) or not target:
        return default
    return default if unsafe_reason(target) is not None else target


def unsafe_reason(target: str) -> str | None:
    """Why ``target`` is not a same-site path (for error messages), or ``None``."""
    text = target
    for _ in range(_MAX_DECODE):
        problem = _path_problem(text, decoded=text is not target)
        if problem is not None:
            return problem if text is target else f"decoded to {text!r}, {problem}"
        decoded = unquote(text, errors="replace") if "%" in text else text
        if decoded == text:
            return None
        text = decoded
    return "it is percent-encoded too many times"


def check_location(location: str) -> None:
    """Refuse a ``Location`` holding any control character (C0, DEL, C1): browsers drop
    some of them silently (tab, newline), which turns a checked target into another one."""
    for ch in location:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F:
            raise ValueError(f"redirect location contains the control character {ch!r}: "
                             f"{location!r}")
