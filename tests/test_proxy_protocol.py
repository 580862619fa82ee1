"""The PROXY protocol v1/v2 parser (sans-IO, whole and byte by byte) and a real listener."""

from __future__ import annotations

import socket
import struct

import pytest

from corkweb import App
from corkweb.errors import ProtocolError
from corkweb.wire.proxy_protocol import V2_SIGNATURE, ProxyHeader, parse_proxy_header

REQUEST = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


def feed(data: bytes) -> ProxyHeader:
    """Parse ``data`` whole, then as a connection would receive it one byte at a time: the
    result must be the same, and every shorter prefix must ask for more."""
    whole = parse_proxy_header(data)
    assert whole is not None
    header_length = len(data) - len(whole.rest)
    for n in range(header_length):
        assert parse_proxy_header(data[:n]) is None, n
    assert parse_proxy_header(data[:header_length]) == ProxyHeader(
        whole.version, whole.source, whole.destination, b"", whole.ssl)
    return whole


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + bytes((0x20 | command, family)) + struct.pack("!H", len(body)) + body


def test_v1_tcp4() -> None:
    h = feed(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n" + REQUEST)
    assert (h.version, h.source, h.destination, h.rest) == (
        1, ("192.0.2.7", 56324), ("198.51.100.1", 443), REQUEST)


def test_v1_tcp6_and_unknown() -> None:
    h = feed(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n")
    assert h.source == ("2001:db8::1", 1) and h.rest == b""
    h = feed(b"PROXY UNKNOWN ffff::1 whatever\r\n" + REQUEST)
    assert h.source is None and h.rest == REQUEST


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n",                # a field missing
    b"PROXY TCP4 1.2.3.4  5.6.7.8 80 80\r\n",            # two spaces
    b"PROXY TCP5 1.2.3.4 5.6.7.8 80 80\r\n",             # unknown family
    b"PROXY TCP4 ::1 ::1 80 80\r\n",                      # family mismatch
    b"PROXY TCP4 1.2.3.999 5.6.7.8 80 80\r\n",            # not an address
    b"PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n",             # leading zero
    b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n",           # port out of range
    b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 80\r\n",
    b"GET / HTTP/1.1\r\n\r\n",                            # no header at all
    b"PROXY TCP4 " + b"1" * 120,                          # no CRLF within 107 bytes
])
def test_v1_malformed_is_400(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_proxy_header(line)
    assert info.value.status == 400


def test_v2_tcp4_tcp6_local_unix() -> None:
    body = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + struct.pack("!HH", 56324, 443)
    h = feed(v2(1, 0x11, body) + REQUEST)
    assert (h.version, h.source, h.destination, h.rest) == (
        2, ("192.0.2.7", 56324), ("198.51.100.1", 443), REQUEST)
    src = socket.inet_pton(socket.AF_INET6, "2001:db8::5")
    dst = socket.inet_pton(socket.AF_INET6, "::ffff:10.0.0.1")
    h = feed(v2(1, 0x21, src + dst + struct.pack("!HH", 1, 2)))
    assert h.source == ("2001:db8::5", 1) and h.destination == ("10.0.0.1", 2)
    assert feed(v2(0, 0x11, body) + REQUEST).source is None  # LOCAL: a health check
    assert feed(v2(1, 0x31, b"\0" * 216)).source is None  # UNIX addresses
    assert feed(v2(1, 0x00, b"")).source is None  # UNSPEC


def test_v2_ssl_tlv() -> None:
    body = bytes(8) + struct.pack("!HH", 1, 2)
    ssl_tlv = bytes([0x20]) + struct.pack("!H", 5) + bytes([0x01]) + bytes(4)
    other_tlv = bytes([0x04]) + struct.pack("!H", 2) + b"ab"  # PP2_TYPE_NOOP
    assert feed(v2(1, 0x11, body + other_tlv + ssl_tlv)).ssl is True
    assert feed(v2(1, 0x11, body + other_tlv)).ssl is False


@pytest.mark.parametrize("data", [
    V2_SIGNATURE + bytes((0x11, 0x11)) + struct.pack("!H", 12) + bytes(12),  # version 1
    V2_SIGNATURE + bytes((0x22, 0x11)) + struct.pack("!H", 12) + bytes(12),  # command 2
    V2_SIGNATURE + bytes((0x21, 0x41)) + struct.pack("!H", 12) + bytes(12),  # family 4
    V2_SIGNATURE + bytes((0x21, 0x11)) + struct.pack("!H", 8) + bytes(8),    # too short
    V2_SIGNATURE + bytes((0x21, 0x11)) + struct.pack("!H", 60000),           # over the limit
    V2_SIGNATURE + bytes((0x21, 0x11)) + struct.pack("!H", 14) + bytes(12) + b"\x20\x00",
])
def test_v2_malformed_is_400(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_proxy_header(data)
    assert info.value.status == 400


# -- a real listener ------------------------------------------------------------------------------


def proxy_app(**kwargs: object) -> App:
    app = App(templates=None, proxy_protocol=True, **kwargs)  # type: ignore[arg-type]

    @app.get("/")
    def home(res: object, req: object) -> None:
        res.end(f"{res.get_remote_address()} {res.get_scheme()}")  # type: ignore[attr-defined]

    return app


def exchange(port: int, data: list[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for piece in data:
            s.sendall(piece)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


CLOSE = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"


def test_listener_takes_the_address_from_the_header(serve: object) -> None:
    server = serve(proxy_app())  # type: ignore[operator]
    # The header in its own packets, byte by byte, then the request.
    header = b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n"
    out = exchange(server.port, [bytes([b]) for b in header] + [CLOSE])
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"203.0.113.9 http"), out
    # Header and request in one packet; v2 with the TLS flag.
    body = bytes([198, 51, 100, 4, 127, 0, 0, 1]) + struct.pack("!HH", 1, 80)
    tlv = bytes([0x20]) + struct.pack("!H", 5) + bytes([0x01]) + bytes(4)
    out = exchange(server.port, [v2(1, 0x11, body + tlv) + CLOSE])
    assert out.endswith(b"198.51.100.4 https"), out
    # LOCAL (a health check of the proxy): the peer's own address.
    out = exchange(server.port, [v2(0, 0x00, b"") + CLOSE])
    assert out.endswith(b"127.0.0.1 http"), out


def test_listener_refuses_a_missing_header_or_an_untrusted_peer(serve: object) -> None:
    server = serve(proxy_app())  # type: ignore[operator]
    out = exchange(server.port, [CLOSE])
    assert out.startswith(b"HTTP/1.1 400") and b"PROXY" in out, out
    strict = serve(proxy_app(trusted_proxies=["10.0.0.0/8"]))  # type: ignore[operator]
    out = exchange(strict.port, [b"PROXY TCP4 1.2.3.4 127.0.0.1 5 80\r\n" + CLOSE])
    assert out.startswith(b"HTTP/1.1 400") and b"not trusted" in out, out
