"""Raw-socket helpers of the hostile-input battery: exact bytes in, every byte out.

A case is sent followed by a *sentinel* request (``GET /sentinel`` with ``Connection: close``)
in the same write. The server ends every exchange by closing, so reading until EOF is the
synchronisation (no sleeps): if the connection was meant to stay usable, the sentinel is the
last response; if the case was meant to close it, the sentinel is never answered.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from corkweb import App, Limits

from .oracle import corkweb_parse

SENTINEL = b"GET /sentinel HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
#: Bytes smuggled inside a body: answering them would mean the framing desynchronised.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

#: The limits of the shared battery server: small, so limit cases stay small and fast.
LIMITS = Limits(
    max_request_line=1024, max_head=4096, max_headers=32, max_body=64 * 1024,
    head_timeout=3.0, body_timeout=3.0, keepalive_timeout=3.0, max_trailer=1024,
)


def make_app(limits: Limits = LIMITS) -> App:
    """Every path answers ``"<METHOD> <path> <body length>"`` after reading the whole body;
    ``/noread`` answers at once without reading the body."""
    app = App(templates=None, limits=limits)

    @app.any("/noread")
    def noread(res, req):
        res.end(f"{req.get_method()} {req.path} unread")

    @app.any("/*")
    async def echo(res, req):
        body = await res.get_data() if req.has_body else b""
        res.end(f"{req.get_method()} {req.path} {len(body)}")

    return app


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


@dataclass
class Exchange:
    raw: bytes
    responses: list[Response] = field(default_factory=list)
    #: Bytes after the last complete response (must be empty).
    rest: bytes = b""

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]


def parse_stream(data: bytes, head_request: bool = False) -> tuple[list[Response], bytes]:
    """Split a response stream strictly (content-length or chunked framing, else to EOF)."""
    out: list[Response] = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].split(b"\r\n")
        version, status, _ = lines[0].split(b" ", 2)
        assert version == b"HTTP/1.1", lines[0]
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            assert sep and name == name.strip(), line
            headers.append((name.lower(), value.strip()))
        code = int(status)
        rest = data[end + 4:]
        hmap = dict(headers)
        if code < 200 or code in (204, 304) or head_request:
            body = b""
        elif b"content-length" in hmap:
            n = int(hmap[b"content-length"])
            if len(rest) < n:
                break
            body, rest = rest[:n], rest[n:]
        elif hmap.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                line_end = rest.find(b"\r\n")
                assert line_end >= 0, "truncated chunked response"
                size = int(rest[:line_end], 16)
                body += rest[line_end + 2:line_end + 2 + size]
                rest = rest[line_end + 2 + size + 2:]
                if size == 0:
                    break
        else:
            body, rest = rest, b""
        out.append(Response(code, headers, body))
        data = rest
    return out, data


def exchange(port: int, data: bytes | list[bytes], *, sentinel: bool = True,
             timeout: float = 5.0) -> Exchange:
    """Send ``data`` (a list: one ``send`` per piece), then the sentinel; read until EOF."""
    pieces = list(data) if isinstance(data, list) else [data]
    if sentinel:
        pieces[-1] = pieces[-1] + SENTINEL
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused early and closed; what it answered is still readable
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break  # the server closed with unread input pending (RST): a close
            except TimeoutError:
                raise AssertionError(f"server did not close within {timeout}s; got {raw!r}") \
                    from None
            if not chunk:
                break
            raw += chunk
    responses, rest = parse_stream(raw)
    return Exchange(raw, responses, rest)


def read_until_close(sock: socket.socket) -> bytes:
    """Read until the peer closes (or resets) the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


@dataclass(frozen=True)
class Case:
    """Exact bytes and the exact reaction: the statuses answered before the sentinel, and
    whether the connection closes (then the sentinel is never answered)."""

    id: str
    data: bytes | list[bytes]
    statuses: tuple[int, ...]
    close: bool
    #: Expected bodies of the responses (``None``: not checked), in order.
    bodies: tuple[bytes | None, ...] = ()
    #: Whether the last response announces the close (not when the refused input came after
    #: a response that was already complete: it is closed without a second answer).
    close_header: bool = True


def run_case(port: int, case: Case) -> Exchange:
    """Play ``case`` against the server on ``port`` and check every part of the reaction.

    A case given as one piece is also fed to the sans-IO parser whole and in 2, 7 and
    ``len(data)`` pieces: the messages and the refusal must not depend on how reads split
    the input. (Cases given as a list of pieces are about reads, and are left out.)
    """
    if isinstance(case.data, bytes):
        whole = corkweb_parse(case.data, 1, LIMITS)
        for pieces in (2, 7, len(case.data)):
            split = corkweb_parse(case.data, pieces, LIMITS)
            assert (split.messages, split.status) == (whole.messages, whole.status), pieces
    ex = exchange(port, case.data)
    assert ex.rest == b"", f"trailing bytes after the last response: {ex.rest!r}"
    expected = list(case.statuses) + ([] if case.close else [200])
    assert ex.statuses == expected, ex.raw
    for r in ex.responses:
        assert b"/smuggled" not in r.body, "bytes meant as a body were answered as a request"
    finals = [r for r in ex.responses if r.status >= 200]
    if case.close:
        if finals and case.close_header:
            assert finals[-1].header(b"connection") == b"close", finals[-1]
    else:
        assert finals[-1].body == b"GET /sentinel 0"
        assert all(r.header(b"connection") != b"close" for r in finals[:-1]), ex.raw
    for r, body in zip(finals, case.bodies, strict=False):
        if body is not None:
            assert r.body == body, (r.body, body)
    return ex
