"""The PROXY protocol, versions 1 (text) and 2 (binary): the header a load balancer (HAProxy,
nginx ``proxy_protocol on``, AWS NLB) sends before the client's bytes to say who the client is.

Sans-IO: :func:`parse_proxy_header` takes the bytes received so far and returns ``None`` while
the header is incomplete, or a :class:`ProxyHeader` with the source address and the bytes that
follow the header (the start of the HTTP stream). Anything that is not a well-formed header is
refused with :class:`~corkweb.errors.ProtocolError` (status 400): on a listener configured for
the PROXY protocol the header is mandatory, and guessing would let a client forge its address.

Specification: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt (cited as "spec"
with its section numbers below).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ..errors import ProtocolError

__all__ = ["ProxyHeader", "parse_proxy_header", "V1_PREFIX", "V2_SIGNATURE", "V1_MAX",
           "V2_MAX"]

V1_PREFIX = b"PROXY "
#: spec §2.2: the 12-byte signature that cannot start an HTTP request.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: spec §2.1: "a receiver ... must not try to read more than 107 characters".
V1_MAX = 107
#: Our own bound for a v2 header (16 bytes + addresses + TLVs). The spec allows up to 64 KiB
#: of TLVs; real proxies send a few dozen bytes, so anything larger is refused rather than
#: buffered.
V2_MAX = 16 + 2048

# spec §2.2, the 14th byte: address family (high nibble) and transport (low nibble).
_AF_UNSPEC, _AF_INET, _AF_INET6, _AF_UNIX = 0x0, 0x1, 0x2, 0x3
_ADDRESS_LENGTH = {_AF_INET: 12, _AF_INET6: 36, _AF_UNIX: 216}
# spec §2.2.7: PP2_TYPE_SSL, and its PP2_CLIENT_SSL flag.
_PP2_TYPE_SSL = 0x20
_PP2_CLIENT_SSL = 0x01


@dataclass(frozen=True)
class ProxyHeader:
    """A parsed PROXY header.

    ``source`` is the client's ``(address, port)`` as the proxy saw it, or ``None`` when the
    header carries none (v1 ``UNKNOWN``, v2 ``LOCAL`` — a health check of the proxy itself —,
    UNIX or unspecified addresses): the connection's own peer address applies then.
    ``ssl`` is true when a v2 header says the client spoke TLS to the proxy.
    """

    version: int
    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    rest: bytes
    ssl: bool = False


def parse_proxy_header(data: bytes) -> ProxyHeader | None:
    """Parse a PROXY header at the start of ``data``; ``None`` if more bytes are needed."""
    if data[:12] == V2_SIGNATURE:
        return _parse_v2(data)
    if data[:6] == V1_PREFIX:
        return _parse_v1(data)
    # Not yet enough bytes to tell: wait, as long as what came is a prefix of a signature.
    if V2_SIGNATURE.startswith(data[:12]) or V1_PREFIX.startswith(data[:6]):
        return None
    raise ProtocolError(400, "expected a PROXY protocol header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProtocolError(400, "PROXY v1 header longer than 107 bytes")
        return None
    line = data[6:end]
    rest = data[end + 2:]
    # spec §2.1: "PROXY UNKNOWN" may be followed by anything, which the receiver ignores.
    if line == b"UNKNOWN" or line.startswith(b"UNKNOWN "):
        return ProxyHeader(1, None, None, rest)
    parts = line.split(b" ")
    if len(parts) != 5:
        raise ProtocolError(400, "malformed PROXY v1 header")
    family, src, dst, sport, dport = parts
    if family == b"TCP4":
        version = 4
    elif family == b"TCP6":
        version = 6
    else:
        raise ProtocolError(400, "unknown PROXY v1 protocol family")
    return ProxyHeader(1, (_v1_address(src, version), _v1_port(sport)),
                       (_v1_address(dst, version), _v1_port(dport)), rest)


def _v1_address(raw: bytes, version: int) -> str:
    try:
        address = ipaddress.ip_address(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(400, "malformed address in PROXY v1 header") from None
    if address.version != version:
        raise ProtocolError(400, "address does not match the PROXY v1 protocol family")
    return str(address)


def _v1_port(raw: bytes) -> int:
    # spec §2.1: a decimal number without leading zeroes, 0..65535.
    if not raw.isdigit() or len(raw) > 5 or (len(raw) > 1 and raw[:1] == b"0"):
        raise ProtocolError(400, "malformed port in PROXY v1 header")
    port = int(raw)
    if port > 65535:
        raise ProtocolError(400, "port out of range in PROXY v1 header")
    return port


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < 16:
        return None
    ver_cmd, fam, length = data[12], data[13], struct.unpack_from("!H", data, 14)[0]
    if ver_cmd >> 4 != 2:
        raise ProtocolError(400, "unsupported PROXY protocol version")
    command = ver_cmd & 0x0F
    if command > 1:  # spec §2.2: 0 LOCAL, 1 PROXY; others must be refused
        raise ProtocolError(400, "unknown PROXY v2 command")
    if 16 + length > V2_MAX:
        raise ProtocolError(400, "PROXY v2 header too large")
    if len(data) < 16 + length:
        return None
    body = data[16:16 + length]
    rest = data[16 + length:]
    family, transport = fam >> 4, fam & 0x0F
    if family > _AF_UNIX or transport > 2:
        raise ProtocolError(400, "unknown PROXY v2 address family")
    need = _ADDRESS_LENGTH.get(family, 0)
    if len(body) < need:
        raise ProtocolError(400, "PROXY v2 address block too short")
    ssl = _client_ssl(body[need:])
    if command == 0:
        # LOCAL: the proxy speaks for itself (a health check); the addresses are ignored.
        return ProxyHeader(2, None, None, rest, ssl)
    if family == _AF_INET and transport != 0:
        src = str(ipaddress.IPv4Address(body[0:4]))
        dst = str(ipaddress.IPv4Address(body[4:8]))
        sport, dport = struct.unpack_from("!HH", body, 8)
        return ProxyHeader(2, (src, sport), (dst, dport), rest, ssl)
    if family == _AF_INET6 and transport != 0:
        src = _ipv6_text(body[0:16])
        dst = _ipv6_text(body[16:32])
        sport, dport = struct.unpack_from("!HH", body, 32)
        return ProxyHeader(2, (src, sport), (dst, dport), rest, ssl)
    # UNSPEC or UNIX: no IP address to report; the connection's own peer applies.
    return ProxyHeader(2, None, None, rest, ssl)


def _ipv6_text(raw: bytes) -> str:
    address = ipaddress.IPv6Address(raw)
    mapped = address.ipv4_mapped
    return str(mapped if mapped is not None else address)


def _client_ssl(tlvs: bytes) -> bool:
    """Walk the TLVs (spec §2.2.1); true if PP2_TYPE_SSL says the client used TLS."""
    offset = 0
    while offset < len(tlvs):
        if offset + 3 > len(tlvs):
            raise ProtocolError(400, "truncated TLV in PROXY v2 header")
        kind = tlvs[offset]
        size = struct.unpack_from("!H", tlvs, offset + 1)[0]
        value = tlvs[offset + 3:offset + 3 + size]
        if len(value) != size:
            raise ProtocolError(400, "truncated TLV in PROXY v2 header")
        if kind == _PP2_TYPE_SSL and size >= 1 and value[0] & _PP2_CLIENT_SSL:
            return True
        offset += 3 + size
    return False
