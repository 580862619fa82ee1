"""Static files and res.sendfile on real sockets: validators, ranges, HEAD, precompressed
siblings, folders, zero-copy large files, and every way out of the folder, one by one."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import socket
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import parse_responses, raw_exchange

from corkweb import App
from corkweb.static import parse_range
from corkweb.testing import TestServer

BIG = 3 * 1024 * 1024 + 17


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "pub"
    (root / "docs").mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    (root / "app.js").write_text("console.log(1);\n" * 50)
    (root / "app.js.gz").write_bytes(gzip.compress(b"console.log(1);\n" * 50))
    (root / "app.js.br").write_bytes(b"BROTLI-BYTES")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / "empty.txt").write_bytes(b"")
    (root / ".env").write_text("SECRET=1")
    (root / "%2e%2e").write_text("a file literally named %2e%2e")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    (root / "link_out.txt").symlink_to(tmp_path / "secret.txt")
    (root / "link_dir").symlink_to(tmp_path)
    (root / "link_in.txt").symlink_to(root / "a.txt")
    (root / "docs" / "escape.gz.txt").write_text("x")
    (root / "docs" / "escape.gz.txt.gz").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
def server(site: Path, serve: Callable[..., TestServer]) -> TestServer:
    app = App(templates=None)
    app.static("/s", site, max_age=60)
    group = app.router("/g")
    group.static("/files", site)

    @app.get("/download")
    async def download(res: Any, req: Any) -> None:
        await res.sendfile(site / "a.txt", download_name="résumé.txt")

    @app.get("/whole")
    async def whole(res: Any, req: Any) -> None:
        await res.sendfile(site / "big.bin")

    return serve(app)


def get(server: TestServer, path: str, **headers: str) -> httpx.Response:
    return httpx.get(server.url + path, headers=headers, follow_redirects=False)


# -- headers, validators, 304 ------------------------------------------------------------------

def test_headers_of_a_small_file(server: TestServer, site: Path) -> None:
    r = get(server, "/s/a.txt")
    assert r.status_code == 200 and r.content == b"hello\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["cache-control"] == "public, max-age=60"
    st = os.stat(site / "a.txt")
    assert r.headers["last-modified"] == formatdate(int(st.st_mtime), usegmt=True)
    assert r.headers["etag"].startswith('"') and r.headers["etag"].endswith('"')


def test_if_none_match_gives_304(server: TestServer) -> None:
    etag = get(server, "/s/a.txt").headers["etag"]
    r = get(server, "/s/a.txt", **{"if-none-match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    assert "content-length" not in r.headers
    assert get(server, "/s/a.txt", **{"if-none-match": f'"x", W/{etag}'}).status_code == 304
    assert get(server, "/s/a.txt", **{"if-none-match": "*"}).status_code == 304
    assert get(server, "/s/a.txt", **{"if-none-match": '"other"'}).status_code == 200


def test_if_modified_since(server: TestServer) -> None:
    last = get(server, "/s/a.txt").headers["last-modified"]
    assert get(server, "/s/a.txt", **{"if-modified-since": last}).status_code == 304
    old = formatdate(0, usegmt=True)
    assert get(server, "/s/a.txt", **{"if-modified-since": old}).status_code == 200
    assert get(server, "/s/a.txt", **{"if-modified-since": "garbage"}).status_code == 200
    # If-None-Match takes precedence (RFC 9110 §13.2.2)
    r = get(server, "/s/a.txt", **{"if-modified-since": last, "if-none-match": '"nope"'})
    assert r.status_code == 200


# -- ranges ---------------------------------------------------------------------------------------

def test_single_ranges(server: TestServer, site: Path) -> None:
    data = (site / "big.bin").read_bytes()
    r = get(server, "/s/big.bin", range="bytes=10-19")
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{BIG}"
    r = get(server, "/s/big.bin", range="bytes=-5")
    assert r.status_code == 206 and r.content == data[-5:]
    r = get(server, "/s/big.bin", range=f"bytes={BIG - 3}-")
    assert r.content == data[-3:]
    r = get(server, "/s/big.bin", range=f"bytes=0-{BIG * 2}")  # clamped
    assert r.status_code == 206 and r.content == data
    r = get(server, "/s/big.bin", range="bytes=1000-2000000")  # large range: zero-copy path
    assert r.status_code == 206 and r.content == data[1000:2000001]


def test_unsatisfiable_and_ignored_ranges(server: TestServer) -> None:
    r = get(server, "/s/a.txt", range="bytes=100-")
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */6"
    assert get(server, "/s/empty.txt", range="bytes=0-").status_code == 416
    assert get(server, "/s/a.txt", range="bytes=-0").status_code == 416
    for ignored in ("bytes=0-1,3-4", "items=0-1", "bytes=5-1", "bytes=x-y", "bytes=-",
                    "bytes=" + "9" * 5000, "bytes=١-٢".encode()):
        r = httpx.get(server.url + "/s/a.txt", headers={"range": ignored})
        assert (r.status_code, r.content) == (200, b"hello\n"), ignored


def test_if_range(server: TestServer) -> None:
    etag = get(server, "/s/a.txt").headers["etag"]
    assert get(server, "/s/a.txt", range="bytes=0-0", **{"if-range": etag}).status_code == 206
    r = get(server, "/s/a.txt", range="bytes=0-0", **{"if-range": '"old"'})
    assert r.status_code == 200 and r.content == b"hello\n"


def test_parse_range_table() -> None:
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=9-", 10) == (9, 9)
    assert parse_range("bytes=10-", 10) == (-1, -1)
    assert parse_range("bytes=-20", 10) == (0, 9)
    assert parse_range("bytes= 2 - 3 ", 10) == (2, 3)
    assert parse_range("bytes=3-2", 10) is None


# -- HEAD, empty, content types ------------------------------------------------------------------

def test_head_has_the_head_and_no_body(server: TestServer) -> None:
    for path, size in (("/s/a.txt", 6), ("/s/big.bin", BIG)):
        raw = raw_exchange(server.port, f"HEAD {path} HTTP/1.1\r\nhost: x\r\n"
                           f"connection: close\r\n\r\n".encode())
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"200 OK" in head and f"content-length: {size}".encode() in head
        assert body == b""


def test_empty_file(server: TestServer) -> None:
    r = get(server, "/s/empty.txt")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"


# -- precompressed siblings ----------------------------------------------------------------------

def test_precompressed_siblings(server: TestServer, site: Path) -> None:
    plain = (site / "app.js").read_bytes()
    r = httpx.get(server.url + "/s/app.js", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.content == plain  # httpx decodes
    assert r.headers["vary"] == "accept-encoding"
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    raw = raw_exchange(server.port, b"GET /s/app.js HTTP/1.1\r\nhost: x\r\naccept-encoding: "
                       b"gzip, br\r\nconnection: close\r\n\r\n")
    (resp,) = parse_responses(raw)
    assert resp.header("content-encoding") == "br" and resp.body == b"BROTLI-BYTES"
    r = httpx.get(server.url + "/s/app.js", headers={"accept-encoding": "br;q=0, gzip;q=0"})
    assert "content-encoding" not in r.headers and r.content == plain
    assert r.headers["vary"] == "accept-encoding"
    etags = {httpx.get(server.url + "/s/app.js", headers={"accept-encoding": enc})
             .headers["etag"] for enc in ("br", "gzip", "identity")}
    assert len(etags) == 3  # each representation has its own validator


def test_precompressed_sibling_symlinked_outside_is_ignored(server: TestServer) -> None:
    r = httpx.get(server.url + "/s/docs/escape.gz.txt", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.content == b"x" and "content-encoding" not in r.headers


# -- folders -----------------------------------------------------------------------------------------

def test_folder_index_and_redirect(server: TestServer) -> None:
    r = get(server, "/s/docs/")
    assert r.status_code == 200 and r.content == b"<h1>docs</h1>"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    r = get(server, "/s/docs?x=1")
    assert r.status_code == 301 and r.headers["location"] == "/s/docs/?x=1"
    assert get(server, "/s/").status_code == 404  # no index.html at the root: no listing


def test_works_in_a_route_group(server: TestServer) -> None:
    assert get(server, "/g/files/a.txt").content == b"hello\n"


def test_inside_symlink_is_served(server: TestServer) -> None:
    assert get(server, "/s/link_in.txt").content == b"hello\n"


def test_a_file_named_like_an_encoding_is_just_a_name(server: TestServer) -> None:
    r = get(server, "/s/%252e%252e")  # decoded once: the file "%2e%2e"
    assert r.status_code == 200 and b"literally" in r.content


# -- escaping the folder: each hostile target --------------------------------------------------

HOSTILE_404 = [
    "/s/../secret.txt",
    "/s/%2e%2e/secret.txt",
    "/s/%2E%2E/secret.txt",
    "/s/.%2e/secret.txt",
    "/s/%2e%2e%2fsecret.txt",
    "/s/..%2Fsecret.txt",
    "/s/%252e%252e/secret.txt",
    "/s/%252e%252e%252fsecret.txt",
    "/s/..%5csecret.txt",
    "/s/%5c..%5csecret.txt",
    "/s/docs/../../secret.txt",
    "/s/docs/%2e%2e/%2e%2e/secret.txt",
    "/s//etc/passwd",
    "/s/%2fetc%2fpasswd",
    "/s/%2Fetc/passwd",
    "/s/link_out.txt",
    "/s/link_dir/secret.txt",
    "/s/.env",
    "/s/./a.txt",
    "/s/docs/./index.html",
    "/s/a.txt/",
    "/s/a.txt/..",
    "/s/nope.txt",
]


@pytest.mark.parametrize("target", HOSTILE_404)
def test_hostile_target_gets_404(server: TestServer, target: str) -> None:
    raw = raw_exchange(server.port, f"GET {target} HTTP/1.1\r\nhost: x\r\n"
                       f"connection: close\r\n\r\n".encode())
    (resp,) = parse_responses(raw)
    assert resp.status == 404, (target, resp)
    assert b"SECRET" not in raw


@pytest.mark.parametrize("target", [
    "/s/a.txt%00", "/s/%00", "/s/a.txt%00.png", "/s/..%00/secret.txt", "/s/%2500%00",
])
def test_nul_byte_gets_400(server: TestServer, target: str) -> None:
    raw = raw_exchange(server.port, f"GET {target} HTTP/1.1\r\nhost: x\r\n"
                       f"connection: close\r\n\r\n".encode())
    (resp,) = parse_responses(raw)
    assert resp.status == 400, (target, resp)


@pytest.mark.parametrize("target", [
    b"/s/..\\secret.txt", b"/s/\\..\\secret.txt", b"http://x/s/../secret.txt",
    b"/s/\x00", b"/s/%c0%ae%c0%ae/secret.txt", b"/s/" + b"../" * 2000 + b"secret.txt",
])
def test_raw_hostile_bytes_are_refused(server: TestServer, target: bytes) -> None:
    raw = raw_exchange(server.port, b"GET " + target + b" HTTP/1.1\r\nhost: x\r\n"
                       b"connection: close\r\n\r\n")
    responses = parse_responses(raw)
    assert responses and responses[0].status in (400, 404, 414), (target, raw[:200])
    assert b"SECRET" not in raw


# -- large files: zero-copy, backpressure, leaving clients -------------------------------------

def test_large_file_is_exact_and_the_connection_goes_on(server: TestServer, site: Path) -> None:
    digest = hashlib.sha256((site / "big.bin").read_bytes()).hexdigest()
    with httpx.Client() as client:
        for _ in range(3):
            r = client.get(server.url + "/s/big.bin")
            assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == digest
            assert client.get(server.url + "/s/a.txt").content == b"hello\n"
        r = client.get(server.url + "/whole")
        assert hashlib.sha256(r.content).hexdigest() == digest


def test_pipelined_request_after_a_large_file(server: TestServer, site: Path) -> None:
    req = b"GET /s/big.bin HTTP/1.1\r\nhost: x\r\n\r\nGET /s/a.txt HTTP/1.1\r\nhost: x\r\n" \
          b"connection: close\r\n\r\n"
    raw = raw_exchange(server.port, req, timeout=10)
    first, second = parse_responses(raw)
    assert first.body == (site / "big.bin").read_bytes() and second.body == b"hello\n"


def test_slow_reader_gets_every_byte(server: TestServer, site: Path) -> None:
    # A tiny receive buffer makes the server's os.sendfile hit EAGAIN again and again.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET /s/big.bin HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        buf = bytearray()
        while chunk := s.recv(1024):
            buf += chunk
    (resp,) = parse_responses(bytes(buf))
    assert resp.body == (site / "big.bin").read_bytes()


def test_client_leaving_mid_file_is_quiet(server: TestServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="corkweb")
    for _ in range(5):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", server.port))
            s.sendall(b"GET /s/big.bin HTTP/1.1\r\nhost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert get(server, "/s/a.txt").content == b"hello\n"  # the server is fine
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_sendfile_download_name(server: TestServer) -> None:
    r = get(server, "/download")
    assert r.content == b"hello\n"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"


def test_static_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        App(templates=None).static("/x", tmp_path / "missing")


def test_large_file_over_tls_uses_executor_reads(site: Path,
                                                 serve: Callable[..., TestServer]) -> None:
    import ssl

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    app = App(templates=None)
    app.static("/s", site)
    server = serve(app, ssl=server_ctx)
    url = f"https://127.0.0.1:{server.port}/s/big.bin"
    with httpx.Client(verify=client_ctx) as client:
        r = client.get(url)
        assert r.content == (site / "big.bin").read_bytes()
        r = client.get(url, headers={"range": "bytes=5-1000004"})
        assert r.status_code == 206 and len(r.content) == 1000000


def test_pipelined_large_files_to_a_slow_reader(server: TestServer, site: Path) -> None:
    # The second head may wait in the transport's buffer: the file must not overtake it.
    data = (site / "big.bin").read_bytes()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET /s/big.bin HTTP/1.1\r\nhost: x\r\n\r\n"
                  b"GET /s/big.bin HTTP/1.1\r\nhost: x\r\nrange: bytes=1-\r\n\r\n"
                  b"GET /s/a.txt HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        buf = bytearray()
        while chunk := s.recv(65536):
            buf += chunk
    first, second, third = parse_responses(bytes(buf))
    assert first.body == data and second.body == data[1:] and third.body == b"hello\n"
