"""HTTPS: the SSLContext builder, the CLI's --ssl-* flags, mutual TLS, corking over TLS.

Certificates are made in the test with ``trustme`` (a throwaway CA).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_process import CLIProcess

from corkweb.server.http import HTTPConnection
from corkweb.server.serve import Server
from corkweb.server.tls import make_ssl_context

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="module")
def pems(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths of the CA, the server's certificate chain and key, a client's cert+key."""
    from cryptography.hazmat.primitives import serialization

    d = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("client@example.com")
    paths = {name: str(d / f"{name}.pem") for name in
             ("ca", "cert", "key", "key_enc", "client")}
    ca.cert_pem.write_to_path(paths["ca"])
    Path(paths["cert"]).write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(paths["key"])
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    Path(paths["key_enc"]).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret")))
    client.private_key_and_cert_chain_pem.write_to_path(paths["client"])
    return paths


def client_context(pems: dict[str, str], cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pems["ca"])
    if cert:
        ctx.load_cert_chain(pems["client"])
    return ctx


def test_https_through_the_cli_with_an_encrypted_key(pems: dict[str, str]) -> None:
    with CLIProcess("run", "cli_app:app", "--port", "0", "--ssl-certfile", pems["cert"],
                    "--ssl-keyfile", pems["key_enc"], "--ssl-keyfile-password",
                    "s3cret") as cli:
        port = cli.ready()
        with httpx.Client(verify=client_context(pems)) as client:
            r = client.get(f"https://localhost:{port}/users/1", timeout=5)
            assert r.status_code == 200 and r.json() == {"id": "1"}
            assert r.http_version == "HTTP/1.1"
        # ALPN: only http/1.1 is offered, so a client asking for h2 learns it in the handshake.
        ctx = client_context(pems)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
        assert cli.stop() == 0, cli.output


def test_https_with_workers(pems: dict[str, str]) -> None:
    with CLIProcess("run", "cli_app:app", "--port", "0", "--workers", "2",
                    "--ssl-certfile", pems["cert"], "--ssl-keyfile", pems["key"]) as cli:
        port = cli.ready()
        cli.wait_for(f"corkweb listening on https://127.0.0.1:{port}")
        with httpx.Client(verify=client_context(pems)) as client:
            assert client.get(f"https://localhost:{port}/", timeout=5).text == "ok"
        assert cli.stop() == 0, cli.output


def test_context_errors_name_the_problem(pems: dict[str, str]) -> None:
    with pytest.raises(ssl.SSLError, match="wrong password"):
        make_ssl_context(pems["cert"], pems["key_enc"], password="nope")
    with pytest.raises(FileNotFoundError, match="not found"):
        make_ssl_context("/nonexistent/cert.pem")
    with pytest.raises(ValueError, match="needs ca_certs"):
        make_ssl_context(pems["cert"], pems["key"], cert_reqs="required")
    ctx = make_ssl_context(pems["cert"], pems["key"], ciphers="ECDHE+AESGCM")
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_NONE


# -- in-process: a Server on TLS with a transport that counts writes ------------------------


class _CountingTransport:
    def __init__(self, inner: Any, writes: list[bytes]) -> None:
        self._inner = inner
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _counting_connection(writes: list[bytes]) -> type[HTTPConnection]:
    class Counting(HTTPConnection):
        __slots__ = ()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(_CountingTransport(transport, writes))

    return Counting


def handler(res: Any, req: Any) -> Any:
    if req.path == "/stream":
        res.write_header("x-a", "1")
        res.write("one ")
        res.write("two ")
        res.end("three")
        return None

    async def later() -> None:
        await asyncio.sleep(0)
        res.write_status(201).write_header("x-b", "2")
        res.write("a")
        res.end("b")

    return later()


async def _exchange(port: int, ctx: ssl.SSLContext, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                   server_hostname="localhost")
    writer.write(request)
    data = b""
    while not data.endswith(b"0\r\n\r\n"):
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
    writer.close()
    return data


@pytest.mark.parametrize("path", ["/stream", "/async"])
def test_corking_holds_over_tls(pems: dict[str, str], path: str) -> None:
    """Head and three body pieces of one scope: one transport.write, also over TLS."""
    writes: list[bytes] = []

    async def main() -> bytes:
        server = Server(handler, protocol_class=_counting_connection(writes))
        addresses = await server.start("127.0.0.1", 0, ssl=make_ssl_context(pems["cert"],
                                                                            pems["key"]))
        try:
            return await _exchange(addresses[0][1], client_context(pems),
                                   f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        finally:
            await server.shutdown(1.0)

    data = asyncio.run(main())
    assert data.startswith(b"HTTP/1.1 20")
    assert len(writes) == 1, writes
    assert writes[0] == data


def test_client_certificates_are_required_with_a_ca(pems: dict[str, str]) -> None:
    async def main() -> tuple[bytes, bytes]:
        ctx = make_ssl_context(pems["cert"], pems["key"], ca_certs=pems["ca"])
        server = Server(handler)
        port = (await server.start("127.0.0.1", 0, ssl=ctx))[0][1]
        try:
            ok = await _exchange(port, client_context(pems, cert=True),
                                 b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
            # TLS 1.3: the client's handshake ends before the server checks its (missing)
            # certificate; the refusal arrives as an alert or a close instead of a response.
            try:
                refused = await _exchange(port, client_context(pems),
                                          b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
            except (ssl.SSLError, ConnectionError):
                refused = b""
            return ok, refused
        finally:
            await server.shutdown(1.0)

    ok, refused = asyncio.run(main())
    assert ok.startswith(b"HTTP/1.1 200") and ok.endswith(b"0\r\n\r\n")
    assert refused == b""
