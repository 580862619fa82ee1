"""Trusted proxies: X-Forwarded-For / X-Forwarded-Proto / Forwarded believed only from them."""

from __future__ import annotations

import socket

import pytest

from corkweb import App
from corkweb.proxy import TrustedProxies


def H(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


def test_untrusted_peer_headers_are_ignored() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client("203.0.113.5", H(x_forwarded_for="1.2.3.4",
                                           x_forwarded_proto="https")) == ("203.0.113.5", None)


def test_walk_from_the_right_skipping_trusted_hops() -> None:
    proxies = TrustedProxies("10.0.0.0/8, 127.0.0.1")
    # The client forged "6.6.6.6"; the first untrusted address from the right is the client.
    xff = H(x_forwarded_for="6.6.6.6, 198.51.100.2, 10.1.1.1")
    assert proxies.client("127.0.0.1", xff) == ("198.51.100.2", None)
    # Every hop trusted: the left-most one is the client.
    assert proxies.client("127.0.0.1", H(x_forwarded_for="10.0.0.9, 10.1.1.1"))[0] == "10.0.0.9"
    # Several header lines are one list (RFC 9110 §5.3).
    two = [(b"X-Forwarded-For", b"6.6.6.6"), (b"x-forwarded-for", b"198.51.100.3")]
    assert proxies.client("127.0.0.1", two)[0] == "198.51.100.3"


def test_garbage_stops_the_walk() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.1"])
    assert proxies.client("127.0.0.1", H(x_forwarded_for="<script>, 10.0.0.1"))[0] == "10.0.0.1"
    assert proxies.client("127.0.0.1", H(x_forwarded_for="unknown"))[0] == "127.0.0.1"


def test_ports_ipv6_and_mapped_addresses() -> None:
    proxies = TrustedProxies(["::1", "127.0.0.0/8"])
    assert proxies.client("::1", H(x_forwarded_for="198.51.100.7:4711"))[0] == "198.51.100.7"
    assert proxies.client("::ffff:127.0.0.1", H(x_forwarded_for="[2001:db8::1]:80"))[0] == \
        "2001:db8::1"
    assert proxies.client("127.0.0.1", H(x_forwarded_for="2001:db8::2"))[0] == "2001:db8::2"


def test_scheme() -> None:
    proxies = TrustedProxies(["127.0.0.1"])
    assert proxies.client("127.0.0.1", H(x_forwarded_proto="https")) == ("127.0.0.1", "https")
    assert proxies.client("127.0.0.1", H(x_forwarded_proto="gopher"))[1] is None
    # One proto per hop: the one that lines up with the client.
    assert proxies.client("127.0.0.1", H(x_forwarded_for="198.51.100.1, 127.0.0.1",
                                         x_forwarded_proto="https, http")) == (
        "198.51.100.1", "https")


def test_forwarded_header_rfc7239() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    fwd = H(forwarded='for=6.6.6.6, for="[2001:db8::7]:443";proto=https, for=10.0.0.3')
    assert proxies.client("127.0.0.1", fwd) == ("2001:db8::7", "https")
    assert proxies.client("127.0.0.1", H(forwarded="for=_hidden;proto=http"))[0] == "127.0.0.1"


def test_settings() -> None:
    assert TrustedProxies(["*"]).is_trusted("203.0.113.1")
    assert TrustedProxies("unix").is_trusted(None)
    assert not TrustedProxies(["127.0.0.1"]).is_trusted(None)
    assert not TrustedProxies(["127.0.0.1"]).is_trusted("not an address")
    with pytest.raises(ValueError, match="not an IP address"):
        TrustedProxies(["localhost"])


def test_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORKWEB_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8")
    assert App(templates=None).trusted_proxies is not None
    monkeypatch.delenv("CORKWEB_TRUSTED_PROXIES")
    assert App(templates=None).trusted_proxies is None


def whoami_app(**kwargs: object) -> App:
    app = App(templates=None, **kwargs)  # type: ignore[arg-type]

    @app.get("/")
    def home(res: object, req: object) -> None:
        res.end(f"{res.get_remote_address()} {res.get_scheme()}")  # type: ignore[attr-defined]

    return app


def get(port: int, headers: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + headers + b"\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out.partition(b"\r\n\r\n")[2]


def test_real_socket(serve: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORKWEB_TRUSTED_PROXIES", raising=False)
    forged = b"x-forwarded-for: 6.6.6.6, 198.51.100.9\r\nx-forwarded-proto: https\r\n"
    plain = serve(whoami_app())  # type: ignore[operator]
    assert get(plain.port, forged) == b"127.0.0.1 http"  # nobody trusted: headers ignored
    behind = serve(whoami_app(trusted_proxies=["127.0.0.1"]))  # type: ignore[operator]
    assert get(behind.port, forged) == b"198.51.100.9 https"
    assert get(behind.port) == b"127.0.0.1 http"
    other = serve(whoami_app(trusted_proxies="10.0.0.0/8"))  # type: ignore[operator]
    assert get(other.port, forged) == b"127.0.0.1 http"
