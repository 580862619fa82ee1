"""Running behind a reverse proxy: who the client is, and which scheme it used.

Behind nginx, the TCP peer of every connection is nginx. The proxy reports the real client in
``X-Forwarded-For`` (or RFC 7239 ``Forwarded``) and the scheme in ``X-Forwarded-Proto``; but
those are plain request headers that any client can send, so they are believed **only when
the connection comes from a trusted proxy** — :class:`TrustedProxies`, built from
``App(trusted_proxies=[...])`` or ``CORKWEB_TRUSTED_PROXIES``.

``X-Forwarded-For`` is read from the right: each proxy appends the address it received the
request from, so the right-most entries were written by our own proxies and the left-most ones
by whoever the client is. Walking from the right and skipping trusted hops finds the first
address that no trusted proxy vouches for going further: that is the client. (Taking the
left-most entry, as many frameworks do, lets a client pick its own address.)

See docs/scaling.md for the nginx side.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from .config import ENV_TRUSTED_PROXIES, env_value

__all__ = ["TrustedProxies", "ENV_TRUSTED_PROXIES", "client_address", "client_scheme",
           "packed_address"]

#: ``CORKWEB_TRUSTED_PROXIES="127.0.0.1,10.0.0.0/8"``: the default of ``App(trusted_proxies)``.

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 7239 §4 and X-Forwarded-Proto: only these schemes are reported.
_SCHEMES = frozenset(("http", "https", "ws", "wss"))


class TrustedProxies:
    """The proxies whose forwarding headers are believed.

    ``TrustedProxies(["127.0.0.1", "10.0.0.0/8", "::1"])``: addresses and CIDR networks.
    ``"*"`` trusts every peer (only for a server that no one can reach but the proxy), and
    ``"unix"`` trusts connections on a UNIX socket (which have no peer address).
    """

    __slots__ = ("_networks", "_any", "_unix")

    def __init__(self, proxies: Iterable[str] | str) -> None:
        if isinstance(proxies, str):
            proxies = proxies.split(",")
        self._networks: list[_Network] = []
        self._any = False
        self._unix = False
        for entry in proxies:
            entry = entry.strip()
            if not entry:
                continue
            if entry == "*":
                self._any = True
            elif entry == "unix":
                self._unix = True
            else:
                try:
                    self._networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or "
                                     "CIDR network (nor '*' or 'unix')") from None

    @classmethod
    def from_setting(cls, value: TrustedProxies | Iterable[str] | str | None,
                     ) -> TrustedProxies | None:
        """``App(trusted_proxies=...)``: ``None`` reads ``CORKWEB_TRUSTED_PROXIES``."""
        if value is None:
            value = env_value(ENV_TRUSTED_PROXIES)
            if value is None:
                return None
        if isinstance(value, TrustedProxies):
            return value
        proxies = cls(value)
        return proxies if proxies else None

    def __bool__(self) -> bool:
        return bool(self._networks) or self._any or self._unix

    def __repr__(self) -> str:
        names = [str(n) for n in self._networks]
        names += ["*"] * self._any + ["unix"] * self._unix
        return f"TrustedProxies({names!r})"

    def is_trusted(self, address: str | None) -> bool:
        """Whether a peer at ``address`` (``None``: a UNIX socket) is a trusted proxy."""
        if address is None:
            return self._unix or self._any
        if self._any:
            return True
        parsed = _parse_ip(address)
        return parsed is not None and self._trusted_ip(parsed)

    def _trusted_ip(self, address: _Address) -> bool:
        if self._any:
            return True
        for network in self._networks:
            if address.version == network.version and address in network:
                return True
        return False

    # -- resolution ---------------------------------------------------------------------------

    def client(self, peer: str | None, headers: Sequence[tuple[bytes, bytes]],
               ) -> tuple[str | None, str | None]:
        """``(client address, forwarded scheme or None)`` for a request from ``peer``.

        From an untrusted peer, the headers are ignored: ``(peer, None)``.
        """
        if not self.is_trusted(peer):
            return peer, None
        xff: list[str] = []
        proto: list[str] = []
        forwarded: list[str] = []
        for raw_name, raw_value in headers:
            name = raw_name.lower()
            if name == b"x-forwarded-for":
                xff.append(raw_value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto.append(raw_value.decode("latin-1"))
            elif name == b"forwarded":
                forwarded.append(raw_value.decode("latin-1"))
        if xff:
            hops = [h.strip() for h in ",".join(xff).split(",")]
            protos = [p.strip().lower() for p in ",".join(proto).split(",")] if proto else []
        elif forwarded:
            hops, protos = _parse_forwarded(",".join(forwarded))
        else:
            protos = [p.strip().lower() for p in ",".join(proto).split(",")] if proto else []
            return peer, _scheme(protos[-1]) if protos else None
        client, index = self._walk(peer, hops)
        scheme = None
        if protos:
            # The proto list, when a proxy chain keeps one per hop, lines up with the hops;
            # otherwise (nginx overwrites the header) the last value is our proxy's.
            pick = protos[index] if index is not None and len(protos) == len(hops) else protos[-1]
            scheme = _scheme(pick)
        return client, scheme

    def _walk(self, peer: str | None, hops: list[str]) -> tuple[str | None, int | None]:
        """Right to left through ``hops``: each was written by the (trusted) sender to its
        right; stop at the first address that is not itself a trusted proxy."""
        client, index = peer, None
        for i in range(len(hops) - 1, -1, -1):
            address = _parse_ip(_strip_port(hops[i]))
            if address is None:
                break  # "unknown", obfuscated or garbage: nothing left of it is believed
            client, index = str(address), i
            if not self._trusted_ip(address):
                break
        return client, index


def client_address(conn: Any, req: Any) -> str | None:
    """``res.get_remote_address()``: the peer, or the client that trusted proxies report."""
    proxies = conn.options.proxies
    peer: str | None = conn.remote_address()
    if proxies is None:
        return peer
    return proxies.client(peer, req.headers)[0]


def client_scheme(conn: Any, req: Any) -> str:
    """``res.get_scheme()``: the connection's own scheme (TLS or not, or a PROXY v2 header's
    TLS flag), overridden by ``X-Forwarded-Proto`` / ``Forwarded`` from a trusted proxy."""
    scheme: str = getattr(conn, "proxy_scheme", None) or (
        "https" if conn.transport.get_extra_info("sslcontext") is not None else "http")
    proxies = conn.options.proxies
    if proxies is not None:
        forwarded = proxies.client(conn.remote_address(), req.headers)[1]
        if forwarded is not None:
            scheme = "https" if forwarded in ("https", "wss") else "http"
    return scheme


def _parse_ip(text: str) -> _Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _strip_port(hop: str) -> str:
    """``1.2.3.4:80`` -> ``1.2.3.4``; ``[::1]:80`` -> ``::1``; a bare IPv6 stays as it is."""
    if hop.startswith("["):
        end = hop.find("]")
        return hop[1:end] if end > 0 else hop
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop


def _scheme(value: str) -> str | None:
    return value if value in _SCHEMES else None


def _parse_forwarded(value: str) -> tuple[list[str], list[str]]:
    """RFC 7239 §4: ``for=1.2.3.4;proto=https, for="[::1]:80"`` -> hops and protos."""
    hops: list[str] = []
    protos: list[str] = []
    for element in value.split(","):
        hop, proto = "", ""
        for pair in element.split(";"):
            key, _, val = pair.strip().partition("=")
            val = val.strip().strip('"')
            key = key.strip().lower()
            if key == "for":
                hop = val
            elif key == "proto":
                proto = val.lower()
        hops.append(hop)
        protos.append(proto)
    return hops, protos


def packed_address(address: str | None) -> bytes | None:
    """``"127.0.0.1"`` as ``b"\\x7f\\x00\\x00\\x01"`` (socketify's ``*_address_bytes``);
    ``None`` for no address or a UNIX socket."""
    if address is None:
        return None
    try:
        return ipaddress.ip_address(address).packed
    except ValueError:
        return None
