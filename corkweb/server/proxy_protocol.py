"""Connections that start with a PROXY protocol header (``App(proxy_protocol=True)``).

A TCP load balancer (HAProxy, nginx's ``proxy_protocol on``, a cloud NLB) cannot add HTTP
headers; it announces the client's address in a PROXY header before the client's bytes
instead. On such a listener the header is mandatory: a connection without one is answered 400
and closed, and so is one from a peer outside ``trusted_proxies`` (when that is set), since the
header is what a client would forge to choose its address.

This is a subclass of the connection class the app serves with, chosen once at start-up, so a
server without the PROXY protocol pays nothing for it: not even an attribute check per read.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ProtocolError
from ..wire.proxy_protocol import parse_proxy_header
from ..wire.writer import error_response
from .http import HTTPConnection

__all__ = ["proxy_protocol_class"]

log = logging.getLogger("corkweb.error")


def proxy_protocol_class(base: type[HTTPConnection], trusted: Any = None,
                         ) -> type[HTTPConnection]:
    """``base`` reading a PROXY v1/v2 header first; ``trusted`` is a
    :class:`corkweb.proxy.TrustedProxies` (or ``None``: any peer may send the header)."""

    class ProxyProtocolConnection(base):  # type: ignore[valid-type,misc]
        __slots__ = ("_proxy_buf", "_proxy_source", "proxy_scheme")

        def __init__(self, state: Any) -> None:
            super().__init__(state)
            #: Bytes of an incomplete header; ``None`` once it was read.
            self._proxy_buf: bytes | None = b""
            self._proxy_source: str | None = None
            #: ``"https"`` when a v2 header says the client used TLS with the proxy.
            self.proxy_scheme: str | None = None

        def data_received(self, data: bytes) -> None:
            buf = self._proxy_buf
            if buf is None:
                super().data_received(data)
                return
            buf += data
            peer = super().remote_address()
            try:
                header = parse_proxy_header(buf)
                if header is not None and trusted is not None and not trusted.is_trusted(peer):
                    raise ProtocolError(400, "PROXY header from a peer that is not trusted")
            except ProtocolError as exc:
                self._proxy_buf = None
                log.info("refused connection from %s: %s", peer, exc.message)
                self.write(error_response(exc.status, exc.message))
                self.close_transport()
                return
            if header is None:
                self._proxy_buf = buf
                return
            self._proxy_buf = None
            if header.source is not None:
                self._proxy_source = header.source[0]
            if header.ssl:
                self.proxy_scheme = "https"
            if header.rest:
                super().data_received(header.rest)

        def remote_address(self) -> str | None:
            source = self._proxy_source
            return source if source is not None else super().remote_address()

        def proxied_address(self) -> str | None:
            """The source address of the PROXY header (``res.get_proxied_remote_address``)."""
            return self._proxy_source

    ProxyProtocolConnection.__qualname__ = f"ProxyProtocol{base.__name__}"
    return ProxyProtocolConnection
