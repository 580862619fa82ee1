"""Which ``Host`` an app answers (``trusted_hosts``) and its own name (``server_name``).

The ``Host`` header is chosen by the client. An app that builds a link from it (a password
reset mail, a redirect, an OAuth callback) follows ``Host: evil.example``, and a cache in front
may keep that answer for everyone. Two settings close this:

* ``App(trusted_hosts=["example.com", "*.example.com"])``: a request whose ``Host`` is none
  of these is answered 400 before any route runs. Ports are ignored, names compare without
  case and without a trailing dot; ``*.example.com`` matches every subdomain (not
  ``example.com`` itself); ``"*"`` matches everything. ``CORKWEB_TRUSTED_HOSTS`` (comma
  separated) is read when the argument is not given.
* ``App(server_name="https://example.com")``: the origin that
  ``app.url_for(name, _external=True)`` puts in front of a path, never taken from the request
  (``CORKWEB_SERVER_NAME`` when not given; a bare ``example.com`` means https).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from .config import ENV_SERVER_NAME, ENV_TRUSTED_HOSTS, env_value
from .errors import BadRequest

__all__ = ["TrustedHosts", "origin_of", "ENV_TRUSTED_HOSTS", "ENV_SERVER_NAME"]



def host_name(host: str) -> str:
    """``Host`` header value -> lower-case name without port or trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, RFC 3986 §3.2.2
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    return host.rstrip(".")


class TrustedHosts:
    """The ``Host`` values an app answers; see the module docstring for the patterns."""

    __slots__ = ("_exact", "_suffixes", "_any", "_patterns")

    def __init__(self, patterns: Iterable[str] | str) -> None:
        if isinstance(patterns, str):
            patterns = patterns.split(",")
        self._exact: set[str] = set()
        self._suffixes: list[str] = []
        self._any = False
        self._patterns: list[str] = []
        for entry in patterns:
            entry = entry.strip()
            if not entry:
                continue
            if "/" in entry or " " in entry:
                raise ValueError(f"trusted_hosts: {entry!r} is not a host name (give "
                                 "'example.com', '*.example.com' or '*', no scheme or path)")
            self._patterns.append(entry)
            if entry == "*":
                self._any = True
            elif entry.startswith("*."):
                self._suffixes.append(host_name(entry[1:]))
            elif "*" in entry:
                raise ValueError(f"trusted_hosts: {entry!r}: '*' is allowed only as "
                                 "'*.domain' or alone")
            else:
                self._exact.add(host_name(entry))

    @classmethod
    def from_setting(cls, value: TrustedHosts | Iterable[str] | str | None,
                     ) -> TrustedHosts | None:
        """``App(trusted_hosts=...)``: ``None`` reads ``CORKWEB_TRUSTED_HOSTS``."""
        if value is None:
            value = env_value(ENV_TRUSTED_HOSTS)
            if value is None:
                return None
        hosts = value if isinstance(value, TrustedHosts) else cls(value)
        if not hosts._patterns:
            raise ValueError("trusted_hosts is empty: no request could be answered "
                             "(give None to accept every Host)")
        return hosts

    def __repr__(self) -> str:
        return f"TrustedHosts({self._patterns!r})"

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` header value (``None``: absent) is answered."""
        if self._any:
            return True
        if not host:
            return False
        name = host_name(host)
        return name in self._exact or any(name.endswith(s) for s in self._suffixes)

    def guard(self, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """``handler`` behind the check: an untrusted ``Host`` raises ``BadRequest`` (400,
        through the app's error handlers) before any route or middleware runs."""
        allows = self.allows

        def checked(res: Any, req: Any) -> Any:
            host = req.get_header("host")
            if not allows(host):
                raise BadRequest(f"unknown host {host!r}" if host is not None
                                 else "a Host header is required")
            return handler(res, req)

        return checked


def origin_of(server_name: str | None) -> str | None:
    """``App(server_name=...)`` -> ``"https://example.com"`` (``None`` reads
    ``CORKWEB_SERVER_NAME``); refuses a value with a path, query or user part."""
    if server_name is None:
        server_name = env_value(ENV_SERVER_NAME)
        if server_name is None:
            return None
    text = server_name.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.username
            or parts.password is not None or parts.path not in ("", "/") or parts.query
            or parts.fragment):
        raise ValueError(f"server_name {server_name!r} is not a host or an origin "
                         "(examples: 'example.com', 'https://example.com:8443')")
    return f"{parts.scheme}://{parts.netloc.lower()}"
