"""Security headers for every answer of the routes that use the middleware.

    app.use(SecurityHeaders(csp={"default-src": "'self'", "img-src": ["'self'", "data:"]}))

Defaults (each argument ``None`` leaves its header out):

* ``strict-transport-security: max-age=31536000; includeSubDomains`` — sent only on answers
  over HTTPS (``res.get_scheme()``, which believes ``X-Forwarded-Proto`` from trusted proxies):
  RFC 6797 §7.2 says a server must not send it over plain HTTP, where an attacker could
  inject it. ``hsts_preload=True`` adds ``preload`` (only after reading hstspreload.org).
* ``x-content-type-options: nosniff`` — browsers trust the declared content type.
* ``x-frame-options: DENY`` — no framing (clickjacking); ``"SAMEORIGIN"`` to allow your own.
* ``referrer-policy: strict-origin-when-cross-origin``.
* ``content-security-policy`` — none by default (a wrong policy breaks pages): a string, or a
  dict of directive -> source(s), checked and serialised once. ``csp_report_only=True`` sends
  ``content-security-policy-report-only`` instead, to try a policy before enforcing it.
* ``cross-origin-opener-policy`` — none by default; ``"same-origin"`` isolates the window.

The lines are built and checked once, at construction, and added just before the head is
serialised, so error answers (404 of a route's own making, 500) carry them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..wire.writer import header_line

__all__ = ["SecurityHeaders", "csp_value"]


def csp_value(policy: str | Mapping[str, str | Iterable[str]]) -> str:
    """A Content-Security-Policy value from a dict ``{"default-src": "'self'", ...}``."""
    if isinstance(policy, str):
        return policy.strip()
    parts = []
    for directive, sources in policy.items():
        name = directive.strip().lower()
        if not name or not all(c.isalnum() or c == "-" for c in name):
            raise ValueError(f"CSP: {directive!r} is not a directive name")
        values = [sources] if isinstance(sources, str) else list(sources)
        for value in values:
            if ";" in value or "," in value:
                raise ValueError(f"CSP: source {value!r} of {name} contains ';' or ','")
        parts.append(" ".join([name, *values]) if values else name)
    return "; ".join(parts)


class SecurityHeaders:
    """Middleware adding security headers; see the module docstring for each argument."""

    def __init__(self, *, hsts_max_age: int | None = 31_536_000,
                 hsts_include_subdomains: bool = True, hsts_preload: bool = False,
                 content_type_options: str | None = "nosniff",
                 frame_options: str | None = "DENY",
                 referrer_policy: str | None = "strict-origin-when-cross-origin",
                 csp: str | Mapping[str, str | Iterable[str]] | None = None,
                 csp_report_only: bool = False,
                 cross_origin_opener_policy: str | None = None,
                 extra: Mapping[str, str] | None = None) -> None:
        if frame_options is not None and frame_options.upper() not in ("DENY", "SAMEORIGIN"):
            raise ValueError("frame_options must be 'DENY', 'SAMEORIGIN' or None "
                             f"(ALLOW-FROM is obsolete: use CSP frame-ancestors), "
                             f"got {frame_options!r}")
        lines = []
        if content_type_options is not None:
            lines.append(header_line("x-content-type-options", content_type_options))
        if frame_options is not None:
            lines.append(header_line("x-frame-options", frame_options.upper()))
        if referrer_policy is not None:
            lines.append(header_line("referrer-policy", referrer_policy))
        if csp is not None:
            name = ("content-security-policy-report-only" if csp_report_only
                    else "content-security-policy")
            lines.append(header_line(name, csp_value(csp)))
        if cross_origin_opener_policy is not None:
            lines.append(header_line("cross-origin-opener-policy", cross_origin_opener_policy))
        for key, value in (extra or {}).items():
            lines.append(header_line(key, value))
        self.lines: tuple[bytes, ...] = tuple(lines)
        self.hsts: bytes | None = None
        if hsts_max_age is not None:
            value = f"max-age={int(hsts_max_age)}"
            if hsts_include_subdomains:
                value += "; includeSubDomains"
            if hsts_preload:
                value += "; preload"
            self.hsts = header_line("strict-transport-security", value)

    def __call__(self, res: Any, req: Any, data: Any) -> Any:
        res.before_head(self._add)
        return data if data is not None else True

    def _add(self, res: Any) -> None:
        res.write_header_lines(self.lines)
        if self.hsts is not None and res.get_scheme() == "https":
            res.write_header_lines((self.hsts,))
