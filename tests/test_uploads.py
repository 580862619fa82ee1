"""Multipart uploads: the sans-IO parser (whole and byte by byte), get_form and the streaming
reader on real sockets, with limits and hostile bodies."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import parse_responses, raw_exchange

from corkweb import App, BadRequest, PayloadTooLarge
from corkweb.multipart import MultipartParser, MultipartReader, parse_options_header
from corkweb.testing import TestServer

B = "xYzZY"


def body(*parts: tuple[str, bytes], boundary: str = B, epilogue: bytes = b"") -> bytes:
    """Build a multipart body from (head lines, content) pairs."""
    out = b"preamble to ignore\r\n"
    for head, content in parts:
        out += f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode() + epilogue


FIELD = ('content-disposition: form-data; name="title"', b"Hello\r\nworld")
FILE = ('content-disposition: form-data; name="doc"; filename="a b.txt"\r\n'
        "content-type: text/plain", b"--xYzZ not a boundary\r\n--xYzZY-not either? no")


def parse_all(data: bytes, step: int | None = None, **limits: Any) -> list[tuple[str, Any]]:
    parser = MultipartParser(B.encode(), **limits)
    events: list[tuple[str, Any]] = []
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        events += parser.feed(piece)
    parser.close()
    merged: list[tuple[str, Any]] = []
    for kind, value in events:  # join data pieces for comparison
        if kind == "data" and merged and merged[-1][0] == "data":
            merged[-1] = ("data", merged[-1][1] + value)
        else:
            merged.append((kind, value))
    return merged


# -- the parser ------------------------------------------------------------------------------

def test_parser_whole_and_byte_by_byte() -> None:
    data = body(FIELD, ("content-disposition: form-data; name=\"doc\"; filename=\"x\"",
                        b"--xYzZ not a boundary\r\n--xYzZ"))
    expected = parse_all(data)
    assert [e[0] for e in expected] == ["part", "data", "end", "part", "data", "end"]
    assert expected[1][1] == b"Hello\r\nworld"
    assert expected[4][1] == b"--xYzZ not a boundary\r\n--xYzZ"
    for step in (1, 2, 3, 7, 64):
        assert parse_all(data, step) == expected


def test_parser_empty_parts_and_no_preamble() -> None:
    data = f"--{B}\r\ncontent-disposition: form-data; name=\"e\"\r\n\r\n\r\n--{B}--".encode()
    assert parse_all(data) == [("part", [("content-disposition", 'form-data; name="e"')]),
                               ("end", None)]


@pytest.mark.parametrize("bad", [
    b"--" + B.encode() + b"\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\nno end",
    b"no boundary at all",
    b"--" + B.encode() + b"garbage\r\n\r\n--" + B.encode() + b"--",
    b"--" + B.encode() + b"\r\nbad header line\r\n\r\nx\r\n--" + B.encode() + b"--",
    b"--" + B.encode() + b"\r\n: no name\r\n\r\nx\r\n--" + B.encode() + b"--",
])
def test_parser_refuses_broken_bodies(bad: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_all(bad)


def test_parser_limits() -> None:
    many = body(*[FIELD] * 5)
    with pytest.raises(PayloadTooLarge, match="parts"):
        parse_all(many, max_parts=4)
    big_head = body(("content-disposition: form-data; name=\"a\"\r\nx-pad: " + "p" * 9000, b""))
    with pytest.raises(PayloadTooLarge, match="head"):
        parse_all(big_head, step=100)
    with pytest.raises(PayloadTooLarge, match="head"):
        parse_all(big_head)
    with pytest.raises(PayloadTooLarge, match="larger"):
        parse_all(many, max_total=50)
    many_headers = body(("\r\n".join(f"x-h{i}: v" for i in range(40)), b""))
    with pytest.raises(PayloadTooLarge, match="headers"):
        parse_all(many_headers)


def test_parse_options_header() -> None:
    assert parse_options_header('form-data; name="a;b"; filename="c\\"d.txt"') == (
        "form-data", {"name": "a;b", "filename": 'c"d.txt'})
    assert parse_options_header("form-data; filename*=UTF-8''%C3%A9.txt; filename=e.txt") == (
        "form-data", {"filename": "é.txt"})
    with pytest.raises(BadRequest):
        parse_options_header('form-data; name="unterminated')


# -- get_form and the reader on real sockets --------------------------------------------------

@pytest.fixture
def server(serve: Callable[..., TestServer]) -> TestServer:
    app = App(templates=None)

    @app.post("/form")
    async def form(res: Any, req: Any) -> None:
        with await res.get_form(spool_max=1024, max_field_size=64 * 1024, max_files=2,
                                max_fields=5, max_file_size=4 * 1024 * 1024) as data:
            out: dict[str, Any] = {k: v for k, v in data.fields.items()}
            for name, files in data.files.items():
                out[name] = [{"filename": f.filename, "type": f.content_type, "size": f.size,
                              "sha": hashlib.sha256(f.read()).hexdigest(),
                              "memory": f.in_memory} for f in files]
            res.end(out)

    @app.post("/stream")
    async def stream(res: Any, req: Any) -> None:
        sizes = []
        async for part in MultipartReader(res, high_water=64 * 1024):
            n = 0
            async for chunk in part:
                n += len(chunk)
            sizes.append([part.name, part.filename, n])
        res.end(sizes)

    @app.post("/skip")
    async def skip(res: Any, req: Any) -> None:
        names = [part.name async for part in MultipartReader(res)]  # parts not read: skipped
        res.end(names)

    return serve(app)


def test_get_form_fields_and_files(server: TestServer) -> None:
    blob = os.urandom(200_000)
    r = httpx.post(server.url + "/form", data={"title": "héllo", "tags": ["a", "b"]},
                   files=[("doc", ("big.bin", blob, "application/x-thing")),
                          ("doc", ("small.txt", b"tiny", "text/plain"))])
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["title"] == ["héllo"] and got["tags"] == ["a", "b"]
    big, small = got["doc"]
    assert big == {"filename": "big.bin", "type": "application/x-thing", "size": 200_000,
                   "sha": hashlib.sha256(blob).hexdigest(), "memory": False}  # spooled
    assert small["size"] == 4 and small["memory"] is True


def test_streaming_reader_with_backpressure(server: TestServer) -> None:
    blob = os.urandom(3 * 1024 * 1024)
    r = httpx.post(server.url + "/stream", data={"a": "1"},
                   files={"f": ("f.bin", blob, "application/octet-stream")})
    assert r.json() == [["a", None, 1], ["f", "f.bin", len(blob)]]


def test_unread_parts_are_skipped(server: TestServer) -> None:
    r = httpx.post(server.url + "/skip", data={"a": "1", "b": "2"},
                   files={"f": ("f.bin", os.urandom(100_000))})
    assert r.json() == ["a", "b", "f"]


def post_raw(server: TestServer, data: bytes, ctype: str = f"multipart/form-data; boundary={B}",
             path: str = "/form") -> Any:
    head = (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {ctype}\r\n"
            f"content-length: {len(data)}\r\nconnection: close\r\n\r\n").encode()
    raw = raw_exchange(server.port, head + data, timeout=10)
    (resp,) = parse_responses(raw)
    return resp


@pytest.mark.parametrize("ctype,status", [
    ("text/plain", 415), ("multipart/form-data", 400), ("multipart/form-data; boundary=", 400),
    ("multipart/form-data; boundary=" + "a" * 71, 400), ("multipart/form-data; boundary=\"a", 400),
    ("multipart/mixed; boundary=abc", 415),
])
def test_bad_content_types(server: TestServer, ctype: str, status: int) -> None:
    assert post_raw(server, body(FIELD), ctype).status == status


@pytest.mark.parametrize("data,status", [
    (body(*[FIELD] * 6), 413),                                       # max_fields=5
    (body(FIELD, ("content-disposition: form-data; name=\"x\"", b"v" * 70_000)), 413),
    (body(*[("content-disposition: form-data; name=\"f\"; filename=\"f\"", b"1")] * 3), 413),
    (body(("content-disposition: form-data; name=\"f\"; filename=\"f\"", b"1" * 4_200_000)), 413),
    (body(("content-disposition: form-data; name=\"t\"", b"\xff\xfe")), 400),  # not UTF-8
    (body(("content-type: text/plain", b"no disposition")), 400),
    (body(("content-disposition: attachment; name=\"a\"", b"x")), 400),
    (body(("content-disposition: form-data", b"no name")), 400),
    (body(FIELD)[:-10], 400),                                        # truncated
    (b"", 400),
])
def test_hostile_bodies(server: TestServer, data: bytes, status: int) -> None:
    resp = post_raw(server, data)
    assert resp.status == status, resp


def test_declared_length_over_the_limit_is_413_before_reading(
        serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)

    @app.post("/up")
    async def up(res: Any, req: Any) -> None:
        await res.get_form(max_total=1000)
        res.end("read")

    server = serve(app)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(f"POST /up HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; "
                  f"boundary={B}\r\ncontent-length: 5000\r\n\r\n".encode())
        assert s.recv(1000).startswith(b"HTTP/1.1 413")  # answered without the body


def test_client_leaving_mid_upload_frees_the_handler(serve: Callable[..., TestServer]) -> None:
    app = App(templates=None)
    import threading

    finished = threading.Event()

    @app.post("/up")
    async def up(res: Any, req: Any) -> None:
        try:
            await res.get_form()
        finally:
            finished.set()

    @app.get("/")
    def home(res: Any, req: Any) -> None:
        res.end("ok")

    server = serve(app)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(f"POST /up HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; "
                  f"boundary={B}\r\ncontent-length: 100000\r\n\r\n".encode() + body(FIELD)[:50])
    assert finished.wait(5)
    assert httpx.get(server.url + "/").text == "ok"


@pytest.mark.parametrize("size", [16384 - 40, 16384 - 5, 16384, 16384 + 3, 3 * 16384 + 1, 70_000])
def test_parser_finds_delimiters_across_search_windows(size: int) -> None:
    content = bytes(range(256)) * (size // 256) + b"\r" * (size % 256)
    data = body(("content-disposition: form-data; name=\"f\"; filename=\"x\"", content), FIELD)
    events = parse_all(data)
    assert events[1] == ("data", content) and events[4] == ("data", b"Hello\r\nworld")
